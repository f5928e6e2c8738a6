'use strict';
/**
 * The agent's weight: the real `mamori agent run` (the service, as systemd starts it) on a fixture
 * system root, beside a bare `node` process in the same run.
 *
 * - first enforcement: from spawning the process to the moment the stick plugged in while the
 *   agent was stopped is switched off (its mass-storage interface's `authorized` reads 0 in the
 *   fixture tree), in ms; the start-up pass does this before the service loads
 *   (docs/design.md#agent-cycle);
 * - first record: from spawning to the `policy.applied` event of the service's first pass (the
 *   moment what was enforced is on record), in ms;
 * - idle RSS: resident memory after the first cycle, once the process has been idle for a while;
 * - peak RSS: the high-water mark (VmHWM) after the first cycle, which holds a full inventory;
 * - idle CPU: user + system time over an idle window, as a percentage of one core.
 * Each figure is printed beside the bare `node` process's (same Node, `setInterval` only) and as
 * the difference, which is what the goals speak of: idle RSS ≤ bare + 25 MB, peak ≤ bare + 60 MB,
 * idle CPU ≤ 0.1 %, first enforcement ≤ 150 ms.
 *
 * The terminal is not enrolled (no collector), with a signed-looking block policy already stored,
 * as after an offline restart; the fixture tree is the tests' own (test/fixtures/linux/sysfs.ts).
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { requireTs } = require('./require-ts');

const repo = path.join(__dirname, '..');


const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** VmRSS and VmHWM of a process, in MB. */
function memory(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)[1]);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** User + system CPU seconds of a process. */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/** Measures one process: idle RSS and CPU over `idleMs` after `ready` resolves. */
async function idleFigures(pid, idleMs) {
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await sleep(idleMs);
  const cpu1 = cpuSeconds(pid);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { ...memory(pid), cpuPercent: ((cpu1 - cpu0) / wall) * 100 };
}

async function run({ idleMs = Number(process.env.MAMORI_BENCH_IDLE_MS ?? 10_000) } = {}) {
  const { PRESETS, buildSysfs } = requireTs(path.join(repo, 'test', 'fixtures', 'linux', 'sysfs.ts'));
  const { openEventStore } = require(path.join(repo, 'dist', 'agent', 'store'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-bench-footprint-'));
  const children = [];
  try {
    const root = path.join(dir, 'root');
    const devices = [PRESETS.keyboard('1-1'), PRESETS.stickWithSerial('1-2', 'BENCH0001'), PRESETS.phoneMtp('2-1'), PRESETS.smartCardReader('2-2'), PRESETS.composite('3-1')];
    buildSysfs(root, devices);
    const dataDir = path.join(dir, 'agent');
    const store = openEventStore(path.join(dataDir, 'agent.db'));
    const policy = { segment: 'mynumber', version: 1, issuedAt: new Date().toISOString(), signature: 'bench', syncIntervalSeconds: 300, incidentContact: '', removableMedia: { mode: 'block', allow: [] } };
    store.setState('policy.current', JSON.stringify(policy));
    const seqBefore = store.head().seq;
    store.close();

    // The bare baseline: the same Node, doing nothing but keeping its event loop alive.
    const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(bare);

    // The stick's mass-storage interface, polled from spawn until it reads 0 (switched off).
    const stickAuthorized = path.join(root, 'sys', 'bus', 'usb', 'devices', '1-2:1.0', 'authorized');
    let blockedAt = null;
    const started = Date.now();
    const poll = setInterval(() => {
      if (blockedAt === null && fs.readFileSync(stickAuthorized, 'utf8').trim() === '0') blockedAt = Date.now();
    }, 1);
    const agent = spawn(process.execPath, [path.join(repo, 'bin', 'mamori.js'), 'agent', 'run', '--data-dir', dataDir, '--system-root', root, '--ipc', path.join(dir, 'agent.sock')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, MAMORI_LOG_LEVEL: 'warn' },
    });
    children.push(agent);
    let stderr = '';
    agent.stderr.on('data', (chunk) => (stderr += chunk));

    const reader = () => {
      try {
        return openEventStore(path.join(dataDir, 'agent.db'), { readonly: true });
      } catch {
        return null;
      }
    };
    const applied = await waitFor(
      'the first policy.applied',
      () => {
        const s = reader();
        if (!s) return null;
        try {
          return s.readSince(seqBefore, 1000).find((e) => e.type === 'policy.applied') ?? null;
        } finally {
          s.close();
        }
      },
      60_000,
    ).catch((err) => {
      throw new Error(`${err.message}; agent stderr: ${stderr.slice(-2000)}`);
    });
    const firstRecordMs = Date.parse(applied.at) - started;
    clearInterval(poll);
    if (blockedAt === null) throw new Error('the stick was never switched off');
    const firstEnforcementMs = blockedAt - started;
    // The first cycle also collects the inventory: wait for it before reading the high-water mark.
    await waitFor(
      'the first inventory',
      () => {
        const s = reader();
        if (!s) return null;
        try {
          return s.getState('inventory.snapshot');
        } finally {
          s.close();
        }
      },
      60_000,
    );
    // What Node itself takes to start and exit here, for scale: the 150 ms goal includes it.
    const bareStartMs = await new Promise((resolve) => {
      const t0 = Date.now();
      spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).once('exit', () => resolve(Date.now() - t0));
    });
    const [ours, base] = await Promise.all([idleFigures(agent.pid, idleMs), idleFigures(bare.pid, idleMs)]);
    if (agent.exitCode !== null) throw new Error(`the agent exited (${agent.exitCode}): ${stderr.slice(-2000)}`);

    const mb = (n) => `${n.toFixed(1)} MB`;
    const goal = (ok) => (ok ? 'meets the goal' : 'MISSES the goal');
    console.log(`Agent footprint: mamori agent run on a fixture root (${devices.length} USB devices, block policy), beside a bare node, idle window ${idleMs / 1000} s`);
    console.log(`  first enforcement: ${firstEnforcementMs} ms after spawn, stick switched off (goal ≤ 150 ms: ${goal(firstEnforcementMs <= 150)})`);
    console.log(`  first record:      ${firstRecordMs} ms after spawn, policy.applied recorded`);
    console.log(`  bare node -e 0:    ${bareStartMs} ms from spawn to exit on this machine, now (first enforcement is ${(firstEnforcementMs / bareStartMs).toFixed(2)}× that)`);
    console.log(`  idle RSS:  ${mb(ours.rss)} vs bare ${mb(base.rss)}: +${mb(ours.rss - base.rss)}, ratio ${(ours.rss / base.rss).toFixed(2)} (goal ≤ +25 MB: ${goal(ours.rss - base.rss <= 25)})`);
    console.log(`  peak RSS:  ${mb(ours.hwm)} vs bare ${mb(base.hwm)}: +${mb(ours.hwm - base.hwm)}, ratio ${(ours.hwm / base.hwm).toFixed(2)} (goal ≤ +60 MB: ${goal(ours.hwm - base.hwm <= 60)})`);
    console.log(`  idle CPU:  ${ours.cpuPercent.toFixed(3)} % vs bare ${base.cpuPercent.toFixed(3)} % of one core (goal ≤ 0.1 %: ${goal(ours.cpuPercent <= 0.1)})`);
    return { firstEnforcementMs, firstRecordMs, bareStartMs, idleRssMb: ours.rss, bareRssMb: base.rss, peakRssMb: ours.hwm, barePeakMb: base.hwm, idleCpuPercent: ours.cpuPercent, bareCpuPercent: base.cpuPercent };
  } finally {
    await Promise.all(children.map(stop));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
if (require.main === module)
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
