'use strict';
// Runs as PID 1 inside the QEMU guest of usb-enforcement.test.ts (started by guest-init.sh), on
// the host's Node and the host's built dist/ (the host root is shared read-only over 9p).
//
// It is the Mamori agent's Linux enforcement, with nothing faked: the real enforcer and
// reconciler with systemRoot '/', the real command runner (blockdev), a real event store, the
// real kernel's USB stack and systemd-udevd applying the rules file the enforcer writes.
//
// Protocol, on the serial console (the host reads QEMU's stdout and writes QEMU's stdin):
//   guest → host: `@@MAMORI <TAG> <json>` lines (READY once, REPLY per command, FATAL).
//   host → guest: `<id> <command> [json]` lines; every command gets one REPLY {id, ok, result|error}.
// Nothing polls in a loop on its own: the host drives each phase (hot-plug over QMP, then a
// command), so what the test sees after a plug is the kernel + udev alone, before any agent pass.
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn, execFile } = require('node:child_process');

const dist = path.resolve(__dirname, '..', '..', '..', 'dist');
const DATA_DIR = '/run/mamori-data';

function say(tag, value) {
  fs.writeSync(1, `@@MAMORI ${tag} ${JSON.stringify(value)}\n`);
}

function powerOff() {
  try {
    fs.writeFileSync('/proc/sysrq-trigger', 'o');
  } catch {
    // Not PID 1 in a guest (a dry run on a host): just exit.
  }
}

function die(err) {
  say('FATAL', { stage: 'agent', error: String((err && err.stack) || err) });
  powerOff();
  setTimeout(() => process.exit(1), 5000);
}
process.on('uncaughtException', die);
process.on('unhandledRejection', die);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function run(cmd, args, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

// ---- What the kernel says, read independently of the code under test -------------------------

const USB = '/sys/bus/usb/devices';

/** Every USB interface with its device's ids, authorization and bound driver, straight from sysfs. */
function usbInterfaces() {
  const out = [];
  for (const name of fs.readdirSync(USB)) {
    if (!name.includes(':')) continue;
    const dir = path.join(USB, name);
    const deviceDir = path.dirname(fs.realpathSync(dir));
    let driver = '';
    try {
      driver = path.basename(fs.readlinkSync(path.join(dir, 'driver')));
    } catch {
      driver = '';
    }
    out.push({
      name,
      port: path.basename(deviceDir),
      vendorId: read(path.join(deviceDir, 'idVendor')),
      productId: read(path.join(deviceDir, 'idProduct')),
      serial: read(path.join(deviceDir, 'serial')),
      product: read(path.join(deviceDir, 'product')),
      interfaceClass: read(path.join(dir, 'bInterfaceClass')),
      description: read(path.join(dir, 'interface')),
      authorized: read(path.join(dir, 'authorized')),
      driver,
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

function rootHubs() {
  return fs
    .readdirSync(USB)
    .filter((n) => /^usb\d+$/.test(n))
    .map((name) => ({ name, interfaceAuthorizedDefault: read(path.join(USB, name, 'interface_authorized_default')) }));
}

/** Every sd* block device, the USB interface it sits below, and its read-only flag. */
function blockDevices() {
  return fs
    .readdirSync('/sys/block')
    .filter((n) => n.startsWith('sd'))
    .map((name) => {
      const real = fs.realpathSync(path.join('/sys/block', name));
      const iface = real.split('/').find((part) => /^\d+-[\d.]+:\d+\.\d+$/.test(part)) ?? null;
      return { name, usbInterface: iface, ro: read(path.join('/sys/block', name, 'ro')) };
    });
}

// ---- Kernel block uevents: recorded as they happen, not polled ---------------------------------

const uevents = [];
const ueventWaiters = new Set();

function startUeventMonitor() {
  return new Promise((resolve, reject) => {
    // udevadm buffers its output when it is a pipe; stdbuf makes it line-buffered.
    const child = spawn('stdbuf', ['-oL', 'udevadm', 'monitor', '--kernel', '--subsystem-match=block'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let ready = false;
    const timer = setTimeout(() => reject(new Error('udevadm monitor did not start')), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => die(new Error(`udevadm monitor exited (${code})`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      // The header ends with "KERNEL - the kernel uevent" once the netlink socket listens.
      if (!ready && /KERNEL - the kernel uevent/.test(line)) {
        ready = true;
        clearTimeout(timer);
        resolve();
        return;
      }
      const m = /^KERNEL\[([\d.]+)\]\s+(\w+)\s+(\S+)\s+\((\w+)\)/.exec(line);
      if (!m) return;
      uevents.push({ at: Number(m[1]), action: m[2], devpath: m[3], name: path.basename(m[3]) });
      for (const w of ueventWaiters) w();
    });
  });
}

function waitForUevent(match, since, timeoutMs) {
  const test = () => uevents.slice(since).find((e) => e.action === match.action && new RegExp(match.name).test(e.name));
  return new Promise((resolve, reject) => {
    const found = test();
    if (found) return resolve(found);
    const timer = setTimeout(() => {
      ueventWaiters.delete(check);
      reject(new Error(`no ${match.action} uevent for ${match.name} within ${timeoutMs} ms`));
    }, timeoutMs);
    function check() {
      const hit = test();
      if (!hit) return;
      clearTimeout(timer);
      ueventWaiters.delete(check);
      resolve(hit);
    }
    ueventWaiters.add(check);
  });
}

// ---- systemd-udevd: it applies the rules file the enforcer writes -------------------------------

async function startUdevd() {
  const bin = ['/lib/systemd/systemd-udevd', '/usr/lib/systemd/systemd-udevd'].find((f) => fs.existsSync(f));
  if (!bin) throw new Error('systemd-udevd not found on the host (apt-get install udev)');
  const child = spawn(bin, [], { stdio: ['ignore', 'ignore', 'ignore'] });
  child.on('exit', (code) => die(new Error(`systemd-udevd exited (${code})`)));
  for (let i = 0; i < 100; i++) {
    if ((await run('udevadm', ['control', '--ping'], 5000)).code === 0) return;
    await sleep(100);
  }
  throw new Error('systemd-udevd did not answer udevadm control --ping');
}

// ---- The agent -------------------------------------------------------------------------------

async function main() {
  for (const f of ['agent/enforcement/index.js', 'agent/store.js', 'agent/logins/index.js']) {
    if (!fs.existsSync(path.join(dist, f))) throw new Error(`${path.join(dist, f)} is missing: run npm run build`);
  }
  const { createLinuxEnforcer, createReconciler } = require(path.join(dist, 'agent/enforcement/index.js'));
  const { openEventStore } = require(path.join(dist, 'agent/store.js'));
  const { execRunner } = require(path.join(dist, 'agent/os/command.js'));

  // usb-storage waits delay_use seconds before scanning, which hides races; make them visible.
  fs.writeFileSync('/sys/module/usb_storage/parameters/delay_use', '0');
  await startUeventMonitor();

  const store = openEventStore(path.join(DATA_DIR, 'agent.db'));
  const warnings = [];
  const logger = {
    warn: (obj, msg) => warnings.push(msg ?? obj),
    error: (obj, msg) => warnings.push(msg ?? obj),
  };
  let policy = null;
  // The real runner, noting what it ran so the host can tell the agent's blockdev from udev's.
  const ran = [];
  const runner = async (cmd, args) => {
    const r = await execRunner(cmd, args);
    ran.push({ cmd: [cmd, ...args].join(' '), code: r.code });
    return r;
  };
  const enforcer = createLinuxEnforcer({ systemRoot: '/', runner });
  const reconciler = createReconciler({ store, enforcer, getPolicy: () => policy, getExceptions: () => [], logger });

  const snapshot = () => ({
    rootHubs: rootHubs(),
    interfaces: usbInterfaces(),
    blocks: blockDevices(),
    uevents,
    events: store.readSince(0, 1000).map((e) => ({ seq: e.seq, type: e.type, payload: e.payload })),
    rules: read('/etc/udev/rules.d/70-mamori-usb.rules'),
    warnings,
  });

  const commands = {
    async policy(arg) {
      policy = arg;
      return { mode: policy.removableMedia.mode };
    },
    async reconcile(arg) {
      warnings.length = 0;
      ran.length = 0;
      const r = await reconciler.reconcile((arg && arg.reason) || 'test');
      return { ...r, warnings: [...warnings], ran: [...ran] };
    },
    snapshot,
    /** Waits until interfaces of vendorId:productId exist (present) or are all gone, then for udev. */
    async waitUsb(arg) {
      const deadline = Date.now() + (arg.timeoutMs ?? 20_000);
      for (;;) {
        const have = usbInterfaces().some((i) => i.vendorId === arg.vendorId && i.productId === arg.productId);
        if (have === (arg.present !== false)) break;
        if (Date.now() > deadline) throw new Error(`${arg.vendorId}:${arg.productId} did not ${arg.present === false ? 'go' : 'appear'}`);
        await sleep(50);
      }
      // The sysfs node exists a moment before its uevent is sent; settle, then settle again.
      await run('udevadm', ['settle', '--timeout=20']);
      await sleep(300);
      await run('udevadm', ['settle', '--timeout=20']);
      return snapshot();
    },
    async waitUevent(arg) {
      return waitForUevent(arg, arg.since ?? 0, arg.timeoutMs ?? 20_000);
    },
    async settle() {
      await run('udevadm', ['settle', '--timeout=20']);
      return snapshot();
    },
    /** A shell command, as a person with root on the terminal would type it. */
    async sh(arg) {
      return run('/bin/sh', ['-c', arg.script]);
    },
    async quit() {
      store.close();
      setTimeout(powerOff, 100);
      return { bye: true };
    },
  };

  // Policy `block` is enforced before anything is plugged, as a booted agent would: the first
  // pass sets interface_authorized_default=0 on the root hubs and writes the udev rules, which
  // systemd-udevd then loads as it starts.
  policy = {
    segment: 'mynumber',
    version: 1,
    issuedAt: '2026-11-24T00:00:00.000Z',
    signature: 'x',
    syncIntervalSeconds: 300,
    incidentContact: '',
    removableMedia: { mode: 'block', allow: [] },
  };
  const first = await reconciler.reconcile('start');
  await startUdevd();
  const uname = await run('uname', ['-r']);
  say('READY', { kernel: uname.stdout.trim(), node: process.version, firstPass: { ...first, warnings: [...warnings] }, snapshot: snapshot() });

  const rl = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on('line', (raw) => {
    const line = raw.replace(/\r$/, '').trim();
    const m = /^(\d+) (\w+)(?: (.*))?$/.exec(line);
    if (!m) return;
    const [, id, name, json] = m;
    queue = queue.then(async () => {
      try {
        const fn = commands[name];
        if (!fn) throw new Error(`unknown command ${name}`);
        const result = await fn(json ? JSON.parse(json) : undefined);
        say('REPLY', { id: Number(id), ok: true, result });
      } catch (err) {
        say('REPLY', { id: Number(id), ok: false, error: String((err && err.message) || err) });
      }
    });
  });
}

main().catch(die);
