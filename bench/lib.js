'use strict';
/** What the benchmarks share: their options, a chained batch of events, a bounded pool. */
const { GENESIS_HASH, eventHash } = require('../dist/shared');

/** The number after `--name` on the command line, or `fallback`. */
function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/** `count` events chained from the genesis hash, one a second from 2026-11-24 09:00 UTC; `body(seq)` gives type and payload. */
function chainOf(count, body) {
  const out = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= count; seq++) {
    const e = { seq, at: new Date(Date.UTC(2026, 10, 24, 9) + seq * 1000).toISOString(), ...body(seq) };
    const hash = eventHash(prev, e);
    out.push({ ...e, prevHash: prev, hash });
    prev = hash;
  }
  return out;
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
async function pool(items, concurrency, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Enrolls terminal `i` (host `pc-<i>`) with `token` over HTTP; its `EnrollResponse`. */
async function enroll(url, token, i) {
  const res = await fetch(`${url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, hostname: `pc-${i}`, machineId: `m-${i}` }),
  });
  if (res.status !== 200) throw new Error(`enrollment answered ${res.status}`);
  return res.json();
}

/** Enrolls `count` terminals, `concurrency` at once; each with the events `eventsOf(i)` to send. */
async function enrollMany(url, token, count, concurrency, eventsOf) {
  const agents = [];
  await pool(
    Array.from({ length: count }, (_, i) => i),
    concurrency,
    async (i) => agents.push({ ...(await enroll(url, token, i)), events: eventsOf(i) }),
  );
  return agents;
}

module.exports = { arg, chainOf, enroll, enrollMany, pool };
