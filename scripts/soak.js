'use strict';
// `npm run soak`: kill -9 of a real agent at random moments while it syncs thousands of events
// to a real collector, and of the collector too every tenth kill; then agent and collector must
// hold the same events, each once, and both hash chains must verify. Both sides are the built CLI
// (`node bin/mamori.js … ` on dist/), with real SQLite files and real HTTP on 127.0.0.1.
// Run `npm run build` first. Not part of `npm test`: test/e2e/soak.test.ts runs it with 20 kills.
//
//   node scripts/soak.js [--kills N] [--seed S] [--json] [--keep]
//
// --kills   how many times the agent is killed (default MAMORI_SOAK_KILLS, else 1000)
// --seed    seed of the random moments (printed, so a run's choices can be repeated)
// --json    print the figures as one JSON line as well
// --keep    keep the temporary data directories (they are always kept when the soak fails)
//
// Exit 0 when nothing was lost, duplicated or altered and both chains verify; 1 otherwise;
// 2 on bad usage.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { prng: random } = require('./prng');

const ROOT = path.join(__dirname, '..');
const MAMORI = path.join(ROOT, 'bin', 'mamori.js');
/** The backlog the agent has to sync in a round: this many events at least, topped up at random. */
const BACKLOG = { min: 1500, max: 4000 };
/** One kill in this many falls anywhere in the agent's run (start, policy, inventory), not in the sync. */
const ANYWHERE_ONE_IN = 5;
const PASSWORD = 'correct horse battery staple';
const POST_EVENTS = /"method":"POST","url":"\/api\/v1\/agents\/[^"]+\/events"/;

class UsageError extends Error {}

function parseArgs(argv) {
  const count = (name, value) => {
    if (value === undefined || !/^\d+$/.test(value) || Number(value) < 1)
      throw new UsageError(`${name} takes a whole number of at least 1, not ${JSON.stringify(value ?? '')}`);
    return Number(value);
  };
  const fromEnv = process.env.MAMORI_SOAK_KILLS;
  const opts = { kills: 1000, seed: Date.now() % 2 ** 31, json: false, keep: false };
  if (fromEnv !== undefined && !argv.includes('--kills')) opts.kills = count('MAMORI_SOAK_KILLS', fromEnv);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--kills') opts.kills = count('--kills', argv[++i]);
    else if (arg === '--seed') opts.seed = count('--seed', argv[++i]);
    else if (arg === '--json') opts.json = true;
    else if (arg === '--keep') opts.keep = true;
    else throw new UsageError(`unknown option ${JSON.stringify(arg)} (usage: node scripts/soak.js [--kills N] [--seed S] [--json] [--keep])`);
  }
  return opts;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs `mamori ARGS` to its end. */
function mamori(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAMORI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(args, env) {
  const r = await mamori(args, env);
  if (r.code !== 0) throw new Error(`mamori ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function exitOf(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * `mamori collector serve` on a fixed port. Its request log tells the soak when an agent's event
 * upload starts, so a kill can be aimed into the sync itself.
 */
async function startCollector(dataDir, port) {
  const child = spawn(process.execPath, [MAMORI, 'collector', 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: { ...process.env, MAMORI_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collector = { child, onEventsPost: null, tail: '' };
  let listening;
  const ready = new Promise((resolve) => (listening = resolve));
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on('line', (line) => {
      collector.tail = `${collector.tail}${line}\n`.slice(-4000);
      if (line.startsWith('listening on')) listening();
      else if (collector.onEventsPost && POST_EVENTS.test(line)) collector.onEventsPost();
    });
  }
  const ended = exitOf(child).then(({ code, signal }) => {
    throw new Error(`the collector ended before listening (${signal ?? code}): ${collector.tail}`);
  });
  const timeout = sleep(30_000).then(() => {
    throw new Error(`the collector did not listen within 30 s: ${collector.tail}`);
  });
  await Promise.race([ready, ended, timeout]);
  ended.catch(() => undefined);
  timeout.catch(() => undefined);
  return collector;
}

async function killCollector(collector) {
  collector.child.kill('SIGKILL');
  await exitOf(collector.child);
}

/** The pieces of dist/ the soak reads the agent's log with; dist/ is what the CLI runs. */
function loadDist() {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'index.js'))) throw new UsageError('dist/ is missing: run `npm run build` first');
  return {
    ...require(path.join(ROOT, 'dist', 'agent', 'store')),
    ...require(path.join(ROOT, 'dist', 'shared')),
    Database: require('better-sqlite3'),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const dist = loadDist();
  const rand = random(opts.seed);
  const startedAt = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-soak-'));
  const collectorDir = path.join(dir, 'collector');
  const agentDir = path.join(dir, 'agent');
  // An empty system root: no sysfs, no wtmp, so the agent never touches this machine's devices.
  const systemRoot = path.join(dir, 'root');
  fs.mkdirSync(systemRoot);
  const agentDb = path.join(agentDir, 'agent.db');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = (line) => process.stderr.write(`soak: ${line}\n`);
  log(`seed ${opts.seed}, ${opts.kills} kills, data in ${dir}`);

  let collector = await startCollector(collectorDir, port);
  let agent = null;
  try {
    const adminToken = await ok(['collector', 'admin', 'add', 'kanri', '--role', 'admin', '--data-dir', collectorDir], { MAMORI_ADMIN_PASSWORD: PASSWORD });
    const enrollToken = await ok(['collector', 'token', 'create', '--segment', 'lgwan', '--data-dir', collectorDir]);
    await ok(['agent', 'enroll', '--collector', url, '--token', enrollToken, '--data-dir', agentDir, '--system-root', systemRoot]);

    const api = async (route) => {
      const res = await fetch(`${url}${route}`, { headers: { authorization: `Bearer ${adminToken}` } });
      if (res.status !== 200) throw new Error(`GET ${route} answered ${res.status}: ${await res.text()}`);
      return res.json();
    };
    const terminal = async () => {
      const rows = await api('/api/v1/admin/terminals');
      if (rows.length !== 1) throw new Error(`expected one terminal, the collector lists ${rows.length}`);
      return rows[0];
    };
    const agentState = () => {
      const store = dist.openEventStore(agentDb, { readonly: true });
      try {
        return { head: store.head().seq, ack: store.ackSeq() };
      } finally {
        store.close();
      }
    };
    let appended = 0;
    /** Gives the agent a backlog of thousands of events, appended as its own log would be. */
    const topUp = (target = BACKLOG.min + Math.floor(rand() * (BACKLOG.max - BACKLOG.min + 1))) => {
      const store = dist.openEventStore(agentDb);
      try {
        const missing = target - (store.head().seq - store.ackSeq());
        if (missing <= 0) return;
        store.transaction(() => {
          for (let i = 0; i < missing; i++, appended++) {
            store.append({
              type: 'login.failure',
              payload: {
                user: appended % 3 ? `user${appended % 97}` : `職員${appended % 13}`,
                source: 'btmp',
                line: 'ssh:notty',
                remoteHost: `10.1.${appended % 250}.9`,
                reason: 'パスワード誤り'.repeat(appended % 4),
              },
            });
          }
        });
      } finally {
        store.close();
      }
    };

    const runAgent = () =>
      spawn(process.execPath, [MAMORI, 'agent', 'run', '--once', '--data-dir', agentDir, '--system-root', systemRoot], { stdio: 'ignore' });

    // Calibration: one run that is not killed, to learn how long a start and a sync take here.
    topUp(BACKLOG.max);
    const calibration = { backlog: agentState(), startMs: 0, syncMs: 0 };
    {
      const t0 = Date.now();
      let firstPost = 0;
      collector.onEventsPost = () => {
        collector.onEventsPost = null;
        firstPost = Date.now();
      };
      agent = runAgent();
      const { code } = await exitOf(agent);
      agent = null;
      collector.onEventsPost = null;
      if (code !== 0 || !firstPost) throw new Error(`the calibration run exited ${code} ${firstPost ? '' : 'without uploading events'}: ${collector.tail}`);
      calibration.startMs = firstPost - t0;
      calibration.syncMs = Date.now() - firstPost;
      const backlog = calibration.backlog.head - calibration.backlog.ack;
      calibration.msPerEvent = calibration.syncMs / backlog;
      log(`calibration: ${backlog} events synced in ${calibration.syncMs} ms after a start of ${calibration.startMs} ms`);
    }

    const figures = {
      kills: 0,
      collectorKills: 0,
      roundsWithoutKill: 0,
      killsDuringSync: 0,
      killsAnywhere: 0,
      killsLeavingBacklog: 0,
      collectorAhead: 0,
    };
    while (figures.kills < opts.kills) {
      topUp();
      const before = agentState();
      const withCollector = (figures.kills + 1) % 10 === 0;
      const anywhere = Math.floor(rand() * ANYWHERE_ONE_IN) === 0;
      const syncWindow = Math.max(50, (before.head - before.ack) * calibration.msPerEvent);
      agent = runAgent();
      const exited = exitOf(agent);
      let timer = null;
      let uploadAt = 0;
      const moment = new Promise((resolve) => {
        if (anywhere) timer = setTimeout(resolve, rand() * (calibration.startMs + syncWindow));
        else {
          collector.onEventsPost = () => {
            collector.onEventsPost = null;
            uploadAt = Date.now();
            clearTimeout(timer);
            timer = setTimeout(resolve, rand() * syncWindow);
          };
          // A run that never uploads (it should) is killed anyway, and said so below.
          timer = setTimeout(resolve, 60_000);
        }
      });
      const first = await Promise.race([moment.then(() => 'kill'), exited.then(() => 'exited')]);
      clearTimeout(timer);
      const sawUpload = uploadAt !== 0;
      collector.onEventsPost = null;
      if (first === 'exited') {
        // The sync was quicker than the estimate: aim the next kills into a shorter window.
        if (uploadAt) calibration.msPerEvent = 0.7 * calibration.msPerEvent + (0.3 * (Date.now() - uploadAt)) / (before.head - before.ack);
        figures.roundsWithoutKill += 1;
        agent = null;
        continue;
      }
      if (!anywhere && !sawUpload) log(`kill ${figures.kills + 1}: the agent had not uploaded within 60 s`);
      if (withCollector) {
        await killCollector(collector);
        figures.collectorKills += 1;
        // The agent sees its collector die under it, and is killed soon after.
        await Promise.race([exited, sleep(rand() * 300)]);
      }
      agent.kill('SIGKILL');
      await exited;
      agent = null;
      figures.kills += 1;
      if (anywhere) figures.killsAnywhere += 1;
      else figures.killsDuringSync += 1;
      if (withCollector) collector = await startCollector(collectorDir, port);
      const after = agentState();
      const held = (await terminal()).ackSeq;
      if (held < after.head) figures.killsLeavingBacklog += 1;
      if (held > after.ack) figures.collectorAhead += 1;
      if (figures.kills % 50 === 0 || figures.kills === opts.kills) {
        log(
          `${figures.kills} kills (${figures.collectorKills} of the collector), ${after.head} events, collector holds ${held}, ${Math.round((Date.now() - startedAt) / 1000)} s`,
        );
      }
    }

    // Delivery after the kills: the agent runs undisturbed until the collector holds everything.
    let delivered = false;
    for (let attempt = 0; attempt < 20 && !delivered; attempt++) {
      if (attempt > 0) await sleep(1000);
      agent = runAgent();
      await exitOf(agent);
      agent = null;
      const state = agentState();
      delivered = state.ack === state.head && (await terminal()).ackSeq === state.head;
    }

    const result = await compare(dist, agentDb, api, (await terminal()).agentId);
    const verifyLog = JSON.parse(await mamori(['agent', 'verify-log', '--json', '--data-dir', agentDir]).then((r) => r.stdout));
    const flagged = (await terminal()).chainBroken;
    await killCollector(collector);
    collector = null;
    const integrity = {
      agent: integrityCheck(dist.Database, agentDb),
      collector: integrityCheck(dist.Database, path.join(collectorDir, 'collector.db')),
    };
    const summary = {
      seed: opts.seed,
      ...figures,
      calibration: { backlog: calibration.backlog.head - calibration.backlog.ack, startMs: calibration.startMs, syncMs: calibration.syncMs },
      delivered,
      events: result.agentEvents,
      collectorEvents: result.collectorRows,
      lost: result.lost,
      duplicated: result.duplicated,
      extra: result.extra,
      altered: result.altered,
      agentChain: verifyLog.intact ? 'intact' : `broken at seq ${verifyLog.firstBadSeq} (${verifyLog.reason})`,
      collectorChain: result.chainBreak ? `broken at seq ${result.chainBreak.seq} (${result.chainBreak.reason})` : 'intact',
      chainBrokenFlag: flagged,
      integrity,
      wallSeconds: Math.round((Date.now() - startedAt) / 100) / 10,
    };
    const passed =
      delivered &&
      summary.lost === 0 &&
      summary.duplicated === 0 &&
      summary.extra === 0 &&
      summary.altered === 0 &&
      verifyLog.intact &&
      !result.chainBreak &&
      flagged === null &&
      integrity.agent === 'ok' &&
      integrity.collector === 'ok';
    printSummary(summary, passed);
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...summary, passed })}\n`);
    if (passed && !opts.keep) fs.rmSync(dir, { recursive: true, force: true });
    else log(`data kept in ${dir}`);
    return passed ? 0 : 1;
  } finally {
    if (agent) agent.kill('SIGKILL');
    if (collector) await killCollector(collector);
  }
}

function integrityCheck(Database, file) {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('integrity_check', { simple: true });
  } finally {
    db.close();
  }
}

/**
 * Walks the agent's log and the collector's copy side by side in seq order: what the agent has
 * and the collector lacks is lost, a seq the collector lists twice is duplicated, one only the
 * collector has is extra, one with another hash is altered; the collector's chain is verified
 * from genesis as it streams.
 */
async function compare(dist, agentDb, api, agentId) {
  const store = dist.openEventStore(agentDb, { readonly: true });
  const figures = { agentEvents: 0, collectorRows: 0, lost: 0, duplicated: 0, extra: 0, altered: 0, chainBreak: null };
  try {
    let agentPage = [];
    let agentCursor = 0;
    const nextAgent = () => {
      if (agentPage.length === 0) {
        agentPage = store.readSince(agentCursor, 5000);
        if (agentPage.length) agentCursor = agentPage[agentPage.length - 1].seq;
        agentPage.reverse();
      }
      const e = agentPage.pop() ?? null;
      if (e) figures.agentEvents += 1;
      return e;
    };
    let a = nextAgent();
    let previous = { seq: 0, hash: dist.GENESIS_HASH };
    let since = 0;
    for (;;) {
      const page = await api(`/api/v1/admin/events?agentId=${encodeURIComponent(agentId)}&since=${since}&limit=5000`);
      if (page.length === 0) break;
      for (const row of page) {
        figures.collectorRows += 1;
        if (row.seq === previous.seq && previous.seq !== 0) {
          figures.duplicated += 1;
          continue;
        }
        while (a && a.seq < row.seq) {
          figures.lost += 1;
          a = nextAgent();
        }
        if (a && a.seq === row.seq) {
          if (a.hash !== row.hash) figures.altered += 1;
          a = nextAgent();
        } else figures.extra += 1;
        if (!figures.chainBreak) figures.chainBreak = dist.verifyChain([row], previous);
        previous = { seq: row.seq, hash: row.hash };
      }
      since = page[page.length - 1].seq;
    }
    while (a) {
      figures.lost += 1;
      a = nextAgent();
    }
    return figures;
  } finally {
    store.close();
  }
}

function printSummary(s, passed) {
  const n = (v) => v.toLocaleString('en-US');
  const lines = [
    `kills:       ${n(s.kills)} of the agent (${n(s.killsDuringSync)} during its event upload, ${n(s.killsAnywhere)} anywhere in its run), ${n(s.collectorKills)} of the collector`,
    `             ${n(s.killsLeavingBacklog)} left events undelivered, ${n(s.collectorAhead)} left the collector ahead of the agent's acknowledged seq; ${n(s.roundsWithoutKill)} runs finished before their kill`,
    `events:      ${n(s.events)} in the agent's log, ${n(s.collectorEvents)} at the collector (delivery ${s.delivered ? 'complete' : 'INCOMPLETE'})`,
    `lost:        ${n(s.lost)}`,
    `duplicated:  ${n(s.duplicated)}`,
    `extra:       ${n(s.extra)}, altered: ${n(s.altered)}`,
    `chains:      agent ${s.agentChain}, collector ${s.collectorChain}, terminal flagged: ${s.chainBrokenFlag === null ? 'no' : `at seq ${s.chainBrokenFlag}`}`,
    `integrity:   agent.db ${s.integrity.agent}, collector.db ${s.integrity.collector}`,
    `wall time:   ${s.wallSeconds} s (seed ${s.seed})`,
    passed ? 'soak: passed' : 'soak: FAILED',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak: ${err instanceof UsageError ? err.message : err.stack}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
