'use strict';
/**
 * Collector ingest: N simulated agents sync chained batches over real HTTP on loopback, against
 * the raw insert of the same rows into the same kind of database in the same run.
 *
 *   node bench/collector-ingest.js [--agents 1000] [--batches 3] [--batch 20] [--concurrency 32]
 *   MAMORI_BENCH_PG_URL=postgres://… adds PostgreSQL.
 * Goal: ≥ 5,000 events/s on SQLite on a 2-core machine.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { createCollector } = require('../dist/collector/server');
const { createEnrollmentToken } = require('../dist/collector/agents');
const { arg, chainOf, enrollMany, pool } = require('./lib');

/** One terminal's `count` chained events. */
function chain(agentIndex, count) {
  return chainOf(count, () => ({ type: 'login.success', payload: { user: `staff${agentIndex % 97}`, source: 'security-log', logonType: 2, line: 'console' } }));
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(label, dbUrl, opts, rawInsert) {
  const collector = await createCollector({ db: dbUrl, logger: false });
  const url = await collector.listen({ host: '127.0.0.1', port: 0 });
  try {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'lgwan', ttlMs: 3_600_000, uses: opts.agents });
    const agents = await enrollMany(url, token, opts.agents, opts.concurrency, (i) => chain(i, opts.batches * opts.batch));
    const latencies = [];
    const started = process.hrtime.bigint();
    await pool(agents, opts.concurrency, async (agent) => {
      for (let b = 0; b < opts.batches; b++) {
        const events = agent.events.slice(b * opts.batch, (b + 1) * opts.batch);
        const t0 = process.hrtime.bigint();
        const res = await fetch(`${url}/api/v1/agents/${agent.agentId}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${agent.agentToken}` },
          body: JSON.stringify({ events }),
        });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`sync answered ${res.status}`);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const total = opts.agents * opts.batches * opts.batch;
    latencies.sort((a, b) => a - b);
    const rate = total / seconds;
    const raw = await rawInsert(collector, agents, opts);
    console.log(
      `collector ingest on ${label}: ${opts.agents} agents × ${opts.batches} batches × ${opts.batch} events over HTTP (concurrency ${opts.concurrency})`,
    );
    console.log(
      `  ${rate.toFixed(0)} events/s   p50 ${percentile(latencies, 50).toFixed(1)} ms   p99 ${percentile(latencies, 99).toFixed(1)} ms   raw insert ${raw.toFixed(0)} rows/s   ratio ${(rate / raw).toFixed(2)}${label === 'SQLite' ? `   (goal ≥ 5,000 events/s: ${rate >= 5000 ? 'met' : 'NOT met'})` : ''}`,
    );
    return { rate, raw, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } finally {
    await collector.stop();
  }
}

/** The same rows, inserted directly in transactions of one batch each. */
async function rawKyselyInsert(collector, agents, opts) {
  const db = collector.ctx.db;
  const receivedAt = new Date().toISOString();
  const rows = [];
  for (const a of agents)
    for (const e of a.events)
      rows.push({
        agent_id: `raw-${a.agentId}`,
        seq: e.seq,
        at: e.at,
        type: e.type,
        payload: JSON.stringify(e.payload),
        prev_hash: e.prevHash,
        hash: e.hash,
        received_at: receivedAt,
      });
  const started = process.hrtime.bigint();
  for (let i = 0; i < rows.length; i += opts.batch) {
    await db.transaction().execute((trx) =>
      trx
        .insertInto('events')
        .values(rows.slice(i, i + opts.batch))
        .execute(),
    );
  }
  return rows.length / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function run() {
  const opts = { agents: arg('agents', 1000), batches: arg('batches', 3), batch: arg('batch', 20), concurrency: arg('concurrency', 32) };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-bench-ingest-'));
  const results = {};
  try {
    results.sqlite = await measure('SQLite', `sqlite:${path.join(dir, 'collector.db')}`, opts, rawKyselyInsert);
    const pgUrl = process.env.MAMORI_BENCH_PG_URL;
    if (pgUrl) {
      const pg = require('pg');
      const name = `mamori_bench_${crypto.randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: pgUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      const url = new URL(pgUrl);
      url.pathname = `/${name}`;
      try {
        results.postgres = await measure('PostgreSQL', url.toString(), opts, rawKyselyInsert);
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end();
      }
    } else {
      console.log('  (PostgreSQL: set MAMORI_BENCH_PG_URL to measure it too)');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

module.exports = { run };
if (require.main === module)
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
