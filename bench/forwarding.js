'use strict';
/**
 * Forwarding to a SIEM: simulated agents sync over real HTTP on loopback while the collector
 * forwards every event to a real rsyslogd (imtcp, RFC 5424 with octet counting) started here.
 * Measures, in one run: ingest with no destination, ingest with one destination, and the
 * forwarding throughput (events/s from the first sync until rsyslog has written the last line).
 *
 *   node bench/forwarding.js [--agents 200] [--batches 5] [--batch 50] [--concurrency 16]
 * Goal: ingest with forwarding on keeps ≥ 90 % of its rate with forwarding off.
 */
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { createCollector } = require('../dist/collector/server');
const { createEnrollmentToken } = require('../dist/collector/agents');
const { addDestination } = require('../dist/collector/forward/store');
const { arg, chainOf, enrollMany, pool } = require('./lib');

/** One terminal's `count` chained events. */
function chain(agentIndex, count) {
  return chainOf(count, () => ({
    type: 'login.failure',
    payload: { user: `職員${agentIndex % 97}`, source: 'security-log', logonType: 2, line: 'console', reason: 'パスワードが違います' },
  }));
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** rsyslogd in the foreground, imtcp only, each message's raw text one line of `out`. */
async function startRsyslog(dir) {
  const port = await freePort();
  const out = path.join(dir, 'received.log');
  const conf = path.join(dir, 'rsyslog.conf');
  fs.mkdirSync(path.join(dir, 'work'), { recursive: true });
  fs.writeFileSync(
    conf,
    [
      `global(workDirectory="${path.join(dir, 'work')}" maxMessageSize="64k")`,
      'module(load="imtcp")',
      `input(type="imtcp" address="127.0.0.1" port="${port}")`,
      'template(name="raw" type="string" string="%rawmsg%\\n")',
      `*.* action(type="omfile" file="${out}" template="raw")`,
      '',
    ].join('\n'),
  );
  execFileSync('rsyslogd', ['-N1', '-f', conf], { stdio: 'ignore' });
  const child = spawn('rsyslogd', ['-f', conf, '-i', path.join(dir, 'rsyslogd.pid'), '-n'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  /** Lines written so far (counted by newline bytes, without decoding). */
  const lines = () => {
    try {
      const buf = fs.readFileSync(out);
      let n = 0;
      for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
      return n;
    } catch {
      return 0;
    }
  };
  return {
    port,
    lines,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

async function measure(dir, opts, siem) {
  const collector = await createCollector({ db: `sqlite:${path.join(dir, 'collector.db')}`, logger: false });
  const url = await collector.listen({ host: '127.0.0.1', port: 0 });
  try {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3_600_000, uses: opts.agents });
    const agents = await enrollMany(url, token, opts.agents, opts.concurrency, (i) => chain(i, opts.batches * opts.batch));
    const before = siem ? siem.lines() : 0;
    if (siem) {
      await addDestination(
        collector.ctx.db,
        { username: 'bench', role: 'admin', address: '127.0.0.1' },
        { name: 'siem', host: '127.0.0.1', port: siem.port, transport: 'tcp', format: 'rfc5424', sendEvents: true, sendAudit: false, enabled: true },
        collector.ctx.clock.now(),
      );
    }
    const started = process.hrtime.bigint();
    await pool(agents, opts.concurrency, async (agent) => {
      for (let b = 0; b < opts.batches; b++) {
        const res = await fetch(`${url}/api/v1/agents/${agent.agentId}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.agentToken}` },
          body: JSON.stringify({ events: agent.events.slice(b * opts.batch, (b + 1) * opts.batch) }),
        });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`sync answered ${res.status}`);
      }
    });
    const total = opts.agents * opts.batches * opts.batch;
    const ingestSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const result = { total, ingestRate: total / ingestSeconds };
    if (siem) {
      result.forwardedAtIngestEnd = siem.lines() - before;
      const deadline = Date.now() + 300_000;
      while (siem.lines() - before < total) {
        if (Date.now() > deadline) throw new Error(`rsyslog has ${siem.lines() - before} of ${total} lines after 5 minutes`);
        await new Promise((r) => setTimeout(r, 50));
      }
      result.forwardRate = total / (Number(process.hrtime.bigint() - started) / 1e9);
    }
    return result;
  } finally {
    await collector.stop();
  }
}

async function run() {
  const opts = { agents: arg('agents', 200), batches: arg('batches', 5), batch: arg('batch', 50), concurrency: arg('concurrency', 16) };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-bench-forward-'));
  fs.mkdirSync(path.join(dir, 'rsyslog'));
  const siem = await startRsyslog(path.join(dir, 'rsyslog'));
  try {
    // Off and on alternate, twice, so that warm-up and a busy neighbour weigh on both alike.
    const runs = [];
    for (let round = 0; round < 2; round++) {
      for (const mode of ['off', 'on']) {
        const sub = path.join(dir, mode, String(round));
        fs.mkdirSync(sub, { recursive: true });
        runs.push({ mode, ...(await measure(sub, opts, mode === 'on' ? siem : undefined)) });
      }
    }
    const mean = (mode, key) => runs.filter((r) => r.mode === mode).reduce((sum, r) => sum + r[key], 0) / 2;
    const off = mean('off', 'ingestRate');
    const on = mean('on', 'ingestRate');
    const forward = mean('on', 'forwardRate');
    const ratio = on / off;
    console.log(
      `forwarding to rsyslog (TCP, RFC 5424): ${opts.agents} agents × ${opts.batches} batches × ${opts.batch} events over HTTP (concurrency ${opts.concurrency}), SQLite, 2 rounds`,
    );
    for (const r of runs)
      console.log(
        `  ${r.mode === 'on' ? 'on ' : 'off'}: ingest ${r.ingestRate.toFixed(0)} events/s${r.mode === 'on' ? `   forwarded ${r.forwardRate.toFixed(0)} events/s until rsyslog wrote all ${r.total} (${r.forwardedAtIngestEnd} when ingest ended)` : ''}`,
      );
    console.log(`  ingest, forwarding off: ${off.toFixed(0)} events/s`);
    console.log(`  ingest, forwarding on:  ${on.toFixed(0)} events/s   ratio ${ratio.toFixed(2)}   (goal ≥ 0.90: ${ratio >= 0.9 ? 'met' : 'NOT met'})`);
    console.log(`  forwarding: ${forward.toFixed(0)} events/s   ratio to ingest with forwarding on ${(forward / on).toFixed(2)}`);
    return { runs, off, on, forward, ratio };
  } finally {
    await siem.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
if (require.main === module)
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
