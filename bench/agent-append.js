'use strict';
/**
 * Agent event append rate against the raw better-sqlite3 insert rate of the same rows, in one run.
 *
 * Ours: `store.append()` exactly as in production (schema validation, canonical JSON, SHA-256
 * chain, one IMMEDIATE transaction per event, WAL, synchronous=FULL).
 * Raw: a prepared INSERT of the already-computed rows into the same schema with the same pragmas,
 * one transaction per row. The ratio ours ÷ raw is the figure; the goal is ≥ 0.5.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Database = require('better-sqlite3');
const { openEventStore } = require('../dist/agent/store');

function events(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({
      type: 'device.blocked',
      payload: {
        vendorId: '0781',
        productId: '5581',
        serial: `4C5300012301011094${String(i).padStart(2, '0')}`,
        manufacturer: 'SanDisk',
        product: 'Ultra USB 3.0',
        deviceClass: '00',
        port: `1-${(i % 8) + 1}`,
        reason: 'policy block',
        mode: 'block',
        interfaces: [`1-${(i % 8) + 1}:1.0`],
      },
    });
  }
  return out;
}

function measure(label, fn) {
  const start = process.hrtime.bigint();
  const count = fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { label, count, seconds, rate: count / seconds };
}

function run({ n = Number(process.env.MAMORI_BENCH_EVENTS ?? 3000) } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-bench-append-'));
  try {
    const input = events(n);
    const store = openEventStore(path.join(dir, 'agent.db'));
    // Warm up both paths so neither pays for first-page allocation alone.
    for (let i = 0; i < 50; i++) store.append(input[i]);
    const ours = measure('agent append', () => {
      for (const e of input) store.append(e);
      return input.length;
    });
    const rows = store.readSince(50, n + 1);
    store.close();

    const raw = new Database(path.join(dir, 'raw.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.exec(
      'CREATE TABLE events (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL) STRICT',
    );
    const insert = raw.prepare('INSERT INTO events (seq, at, type, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)');
    const tx = raw.transaction((r) => insert.run(r.seq, r.at, r.type, JSON.stringify(r.payload), r.prevHash, r.hash));
    for (let i = 0; i < 50; i++) tx.immediate({ ...rows[i], seq: -1 - i });
    const rawResult = measure('raw insert', () => {
      for (const r of rows) tx.immediate(r);
      return rows.length;
    });
    raw.close();

    const ratio = ours.rate / rawResult.rate;
    console.log(`agent event append (${n} events, one durable transaction each)`);
    console.log(`  ours: ${ours.rate.toFixed(0)} events/s   raw better-sqlite3: ${rawResult.rate.toFixed(0)} rows/s   ratio: ${ratio.toFixed(2)} (goal ≥ 0.5)`);
    return { ours: ours.rate, raw: rawResult.rate, ratio };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
if (require.main === module) run();
