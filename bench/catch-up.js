'use strict';
/**
 * Catch-up after an outage: an agent that was offline for 30 days (50,000 events in its local log)
 * delivers everything to a collector that has just come back, over real HTTP on loopback, with the
 * production sync loop (`syncEvents`: batches of 500, each acknowledged before the next), against
 * the collector's steady ingest rate measured in the same run (many agents with small batches, as
 * on an ordinary day).
 *
 *   node bench/catch-up.js [--events 50000] [--agents 200] [--batch 20]
 * Goal: every event delivered within 20 s of the collector coming back.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createCollector } = require('../dist/collector/server');
const { createEnrollmentToken } = require('../dist/collector/agents');
const { openEventStore } = require('../dist/agent/store');
const { createSyncClient } = require('../dist/agent/sync-client');
const { syncEvents } = require('../dist/agent/sync');
const { arg, enroll } = require('./lib');

/** One event of an ordinary day, the i-th: logins and blocked sticks in turn. */
function dayEvent(i) {
  if (i % 3 === 0) {
    return {
      type: 'device.blocked',
      payload: {
        vendorId: '0781',
        productId: '5581',
        serial: `4C530001230101109${String(i % 100).padStart(3, '0')}`,
        manufacturer: 'SanDisk',
        product: 'Ultra USB 3.0',
        deviceClass: '00',
        port: `1-${(i % 8) + 1}`,
        reason: 'policy block',
        mode: 'block',
        interfaces: [`1-${(i % 8) + 1}:1.0`],
      },
    };
  }
  return { type: 'login.success', payload: { user: `staff${i % 97}`, source: 'security-log', logonType: 2, line: 'console' } };
}

/** Steady state: `agents` agents each deliver one small batch from their own store, concurrently. */
async function steadyRate(url, token, dir, agents, batch) {
  const parties = [];
  for (let i = 0; i < agents; i++) {
    const enrolled = await enroll(url, token, `steady-${i}`);
    const store = openEventStore(path.join(dir, `steady-${i}.db`));
    for (let k = 0; k < batch; k++) store.append(dayEvent(k));
    parties.push({ store, client: createSyncClient({ baseUrl: url, agentId: enrolled.agentId, agentToken: enrolled.agentToken }) });
  }
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < parties.length) {
        const p = parties[next++];
        await syncEvents(p.store, p.client);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const p of parties) p.store.close();
  return (agents * batch) / seconds;
}

async function run() {
  const opts = { events: arg('events', 50_000), agents: arg('agents', 200), batch: arg('batch', 20) };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-bench-catchup-'));
  try {
    // The offline month, appended as the agent appends (one transaction per event).
    const built = process.hrtime.bigint();
    const store = openEventStore(path.join(dir, 'agent.db'));
    for (let i = 0; i < opts.events; i++) store.append(dayEvent(i));
    const buildSeconds = Number(process.hrtime.bigint() - built) / 1e9;

    const collector = await createCollector({ db: `sqlite:${path.join(dir, 'collector.db')}`, logger: false });
    const url = await collector.listen({ host: '127.0.0.1', port: 0 });
    try {
      const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3_600_000, uses: opts.agents + 1 });
      const enrolled = await enroll(url, token, 'offline');
      const client = createSyncClient({ baseUrl: url, agentId: enrolled.agentId, agentToken: enrolled.agentToken });

      const started = process.hrtime.bigint();
      const result = await syncEvents(store, client);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (result.ackSeq !== opts.events) throw new Error(`catch-up stopped at seq ${result.ackSeq} of ${opts.events}`);
      const stored = await collector.ctx.db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('agent_id', '=', enrolled.agentId)
        .executeTakeFirstOrThrow();
      if (Number(stored.n) !== opts.events) throw new Error(`the collector holds ${stored.n} of ${opts.events} events`);
      const catchUpRate = opts.events / seconds;

      const steady = await steadyRate(url, token, dir, opts.agents, opts.batch);
      console.log(`catch-up: ${opts.events} events (30 days offline; appended in ${buildSeconds.toFixed(1)} s) delivered over HTTP on SQLite`);
      console.log(
        `  ${seconds.toFixed(2)} s (goal ≤ 20 s: ${seconds <= 20 ? 'met' : 'NOT met'})   ${catchUpRate.toFixed(0)} events/s   steady ingest ${steady.toFixed(0)} events/s (${opts.agents} agents × ${opts.batch})   ratio ${(catchUpRate / steady).toFixed(2)}`,
      );
      return { seconds, catchUpRate, steady };
    } finally {
      store.close();
      await collector.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
if (require.main === module)
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
