'use strict';
/**
 * Ledger export (端末台帳) of 10,000 terminals from a SQLite collector database, as CSV and as XLSX,
 * against the raw limits measured in the same run.
 *
 * The fleet is stored as `storeInventory` stores it: each snapshot with its ledger columns beside
 * it (`inventory_latest.ledger`, half a kilobyte), which is what an export reads.
 * Ours: `writeLedgerCsv` / `writeLedgerXlsx` fed by `ledgerRowBatches` exactly as the HTTP route
 * uses them (pages of 500 terminals, row building, neutralisation, cell typing), written to a file.
 * Raw read: one better-sqlite3 SELECT of the same agents joined with inventory_latest, iterated,
 * with JSON.parse of each row's ledger columns, and the fleet's blocked-in-7-days counts; nothing
 * formatted.
 * Raw XLSX: exceljs's streaming writer, default options, writing the same number of rows of the
 * same text as pre-built plain strings, to a file.
 * The figures are raw ÷ ours (time), like reconcile.js: 1 would mean exporting costs nothing on top
 * of reading the rows (CSV) or of reading them and having exceljs write them (XLSX).
 *
 * Every measurement runs in a fresh child process, so that each format's peak memory is its own:
 * peak RSS is the child's maxRSS (process.resourceUsage) over its whole life, module loading
 * included; Δ is that peak over the RSS just before the export started. Each is run 3 times,
 * interleaved; times are the median run, memory the worst.
 *
 *   node bench/ledger-export.js [--terminals 10000] [--runs 3]
 * Goals (2-core machine): CSV < 1 s; XLSX < 3 s and < 200 MB.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { prng } = require('../scripts/prng');
const { arg } = require('./lib');

const DAY = 24 * 3600 * 1000;
const AT = Date.parse('2026-11-24T03:00:00.000Z');


const MODELS = [
  ['FUJITSU', 'ESPRIMO D7011/H', 'Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz'],
  ['NEC Corporation', 'PC-MKM30BZG9', 'Intel(R) Core(TM) i5-9500 CPU @ 3.00GHz'],
  ['Dynabook Inc.', 'dynabook B65/HS', '11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz'],
  ['HP', 'HP ProDesk 400 G7 SFF', 'Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz'],
  ['LENOVO', 'ThinkCentre M75q Gen 2', 'AMD Ryzen 5 PRO 4650GE with Radeon Graphics'],
];
const USB = [
  ['046d', 'c077', 'Logitech', 'USB Optical Mouse', '', [['03', 'usbhid']]],
  ['0409', '005a', 'NEC', 'USB2.0 Hub', '', [['09', 'hub']]],
  ['0781', '5581', 'SanDisk', 'Ultra USB 3.0', '4C530001230101109473', [['08', 'usb-storage']]],
  ['056e', '00e4', 'ELECOM', 'USB Keyboard', '', [['03', 'usbhid'], ['03', 'usbhid']]],
  ['04e6', '5116', 'SCM Microsystems', 'SCR3310 USB Smart Card Reader', '53311546212233', [['0b', 'usbccid']]],
  ['0bda', '58f4', 'Realtek', 'Integrated Webcam', '200901010001', [['0e', 'uvcvideo'], ['0e', 'uvcvideo'], ['01', 'snd-usb-audio']]],
  ['04bb', '1043', 'I-O DATA', 'USB Flash Disk', 'A0000000000123', [['08', 'usb-storage']]],
  ['054c', '0cdf', 'Sony', 'ICD-UX570 ＩＣレコーダー', 'A1B2C3', [['08', 'usb-storage']]],
];
const SURNAMES = ['yamada', 'sato', 'suzuki', 'takahashi', 'tanaka', 'watanabe', 'ito', 'nakamura', 'kobayashi', 'kato'];

/** A realistic snapshot: 1–3 disks, 2–3 network interfaces plus loopback, 3–6 USB devices. */
function snapshot(i, rand) {
  const [manufacturer, model, cpu] = MODELS[i % MODELS.length];
  const hex = (n) => Math.floor(rand() * 16 ** n).toString(16).padStart(n, '0');
  const mac = () => Array.from({ length: 6 }, () => hex(2)).join(':');
  const disks = Array.from({ length: 1 + Math.floor(rand() * 3) }, (_, d) => ({
    device: `\\\\.\\PHYSICALDRIVE${d}`, type: d === 0 ? 'SSD' : 'HD', name: d === 0 ? 'EXCERIA SSD' : 'WD10EZEX-08WN4A0',
    vendor: d === 0 ? 'KIOXIA' : 'Western Digital', serial: `${hex(8).toUpperCase()}${d}`, sizeBytes: (d === 0 ? 256 : 1000) * 1e9, interfaceType: d === 0 ? 'NVMe' : 'SATA',
  }));
  const network = Array.from({ length: 2 + Math.floor(rand() * 2) }, (_, n) => ({
    iface: ['イーサネット', 'Wi-Fi', 'vEthernet (Default Switch)'][n], mac: mac(),
    ipv4: [`10.${20 + n}.${Math.floor(i / 250) % 256}.${(i % 250) + 2}`], ipv6: [`fe80::${hex(4)}:${hex(4)}:${hex(4)}:${hex(4)}`], internal: false, virtual: n === 2,
  }));
  network.push({ iface: 'Loopback Pseudo-Interface 1', mac: '00:00:00:00:00:00', ipv4: ['127.0.0.1'], ipv6: ['::1'], internal: true, virtual: false });
  const usb = Array.from({ length: 3 + Math.floor(rand() * 4) }, (_, u) => {
    const [vendorId, productId, man, product, serial, ifaces] = USB[Math.floor(rand() * USB.length)];
    return {
      port: `1-${u + 1}`, vendorId, productId, serial, manufacturer: man, product, deviceClass: '00',
      interfaces: ifaces.map(([cls, driver], k) => ({ name: `1-${u + 1}:1.${k}`, interfaceClass: cls, interfaceSubClass: '00', interfaceProtocol: '00', description: '', authorized: true, driver })),
      authorized: true, rootHub: false,
    };
  });
  return {
    collectedAt: new Date(AT - rand() * DAY).toISOString(), agentVersion: '0.1.0', hostname: `CITY-PC-${String(i).padStart(5, '0')}`,
    system: { manufacturer, model, serial: `${hex(10).toUpperCase()}`, uuid: `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}` },
    bios: { vendor: manufacturer, version: `1.${Math.floor(rand() * 20)}.0`, releaseDate: '2024-04-01' },
    os: { platform: 'win32', distro: 'Microsoft Windows 11 Pro', release: '10.0.22631', kernel: '10.0.22631', arch: 'x64' },
    cpu: { manufacturer: cpu.split(' ')[0], brand: cpu, cores: 12, physicalCores: 6 },
    memory: { totalBytes: (rand() < 0.5 ? 8 : 16) * 1024 ** 3 },
    disks, network,
    users: [{ user: `${SURNAMES[i % SURNAMES.length]}.${i}`, tty: 'console', host: '', since: '2026-11-24T00:00:00.000Z' }],
    usb, enforcement: 'active', warnings: [],
  };
}

/** Seeds the fleet straight through better-sqlite3 into a database the collector migrated. */
async function seed(file, terminals) {
  const { openCollectorDb, parseDbUrl } = require('../dist/collector/db/connect');
  const collectorDb = await openCollectorDb(parseDbUrl(`sqlite:${file}`));
  await collectorDb.destroy();
  const Database = require('better-sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const rand = prng(42);
  const agent = db.prepare(`INSERT INTO agents (id, hostname, machine_id, segment, token_hash, unlock_secret, enrolled_at, last_seen, ack_seq, last_hash, policy_version, enforcement, agent_version, last_user)
    VALUES (?, ?, ?, ?, 'x', 'x', '2026-04-01T00:00:00.000Z', ?, 0, 'x', ?, 'active', '0.1.0', ?)`);
  const { inventoryColumns } = require('../dist/collector/export/ledger');
  const inventory = db.prepare('INSERT INTO inventory_latest (agent_id, hash, snapshot, received_at, ledger) VALUES (?, ?, ?, ?, ?)');
  const event = db.prepare(`INSERT INTO events (agent_id, seq, at, type, payload, prev_hash, hash, received_at) VALUES (?, ?, ?, ?, ?, 'p', 'h', ?)`);
  let events = 0;
  let bytes = 0;
  db.transaction(() => {
    for (let i = 0; i < terminals; i++) {
      // Inserted out of host-name order, as enrolments come.
      const n = (i * 7919) % terminals;
      const id = `${n.toString(16).padStart(8, '0')}-${Math.floor(rand() * 1e9).toString(16)}`;
      const snap = snapshot(n, rand);
      const json = JSON.stringify(snap);
      bytes += json.length;
      const lastSeen = new Date(AT - rand() * 3 * DAY).toISOString();
      agent.run(id, snap.hostname, `m-${n}`, ['mynumber', 'lgwan', 'internet'][n % 3], lastSeen, 3, snap.users[0].user);
      inventory.run(id, 'h', json, lastSeen, JSON.stringify(inventoryColumns(snap)));
      let seq = 0;
      for (let k = 0; k < 5; k++) {
        const at = new Date(AT - rand() * 14 * DAY).toISOString();
        event.run(id, ++seq, at, 'login.success', JSON.stringify({ user: snap.users[0].user, source: 'security-log', logonType: 2 }), at);
      }
      if (rand() < 0.3) {
        for (let k = 0, b = 1 + Math.floor(rand() * 5); k < b; k++) {
          const at = new Date(AT - rand() * 14 * DAY).toISOString();
          event.run(id, ++seq, at, 'device.blocked', JSON.stringify({ vendorId: '0781', productId: '5581', serial: 'X', manufacturer: 'SanDisk', product: 'Ultra', deviceClass: '00', port: '1-2', reason: 'policy block' }), at);
        }
      }
      events += seq;
    }
  })();
  db.close();
  return { events, snapshotBytes: bytes };
}

/** Runs in a child: one measurement, printed as one JSON line. */
async function child(mode, file, out) {
  let peakHeap = 0;
  let peakRss = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
  };
  let work;
  if (mode === 'raw-read') {
    const Database = require('better-sqlite3');
    const db = new Database(file, { readonly: true });
    work = async () => {
      let rows = 0;
      const since = new Date(AT - 7 * DAY).toISOString();
      const counts = new Map(db.prepare("SELECT agent_id, count(*) AS n FROM events WHERE type = 'device.blocked' AND at >= ? GROUP BY agent_id").raw().all(since));
      const select = db.prepare('SELECT a.id, a.hostname, a.segment, a.last_seen, a.policy_version, a.enforcement, a.agent_version, a.last_user, i.ledger FROM agents a LEFT JOIN inventory_latest i ON i.agent_id = a.id ORDER BY a.hostname, a.id');
      for (const row of select.iterate()) {
        const columns = JSON.parse(row.ledger);
        if (columns && counts.get(row.id) !== -1) rows++;
      }
      return rows;
    };
  } else {
    const { openCollectorDb, parseDbUrl } = require('../dist/collector/db/connect');
    const { ledgerRowBatches, ledgerRows } = require('../dist/collector/export/ledger');
    const { writeLedgerCsv } = require('../dist/collector/export/csv');
    const { writeLedgerXlsx } = require('../dist/collector/export/xlsx');
    const { db } = await openCollectorDb(parseDbUrl(`sqlite:${file}`));
    const at = new Date(AT);
    if (mode === 'csv') work = () => writeLedgerCsv(ledgerRowBatches(db, undefined, at), 'ja', fs.createWriteStream(out));
    else if (mode === 'xlsx') work = () => writeLedgerXlsx(ledgerRowBatches(db, undefined, at), 'ja', fs.createWriteStream(out), at);
    else if (mode === 'raw-xlsx') {
      // The same text, built before the clock starts: what exceljs costs with nothing of ours.
      const ExcelJS = require('exceljs');
      const rows = (await ledgerRows(db, undefined, at)).map((r) => Object.values(r).map((v) => (v === null ? '' : String(v))));
      work = async () => {
        const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: fs.createWriteStream(out) });
        const sheet = workbook.addWorksheet('Ledger');
        for (const values of rows) sheet.addRow(values).commit();
        sheet.commit();
        await workbook.commit();
        return rows.length;
      };
    } else throw new Error(`unknown mode ${mode}`);
  }
  sample();
  const before = process.memoryUsage().rss;
  const timer = setInterval(sample, 5);
  const started = process.hrtime.bigint();
  const rows = await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(timer);
  sample();
  peakRss = Math.max(peakRss, process.resourceUsage().maxRSS * 1024);
  const bytes = out && fs.existsSync(out) ? fs.statSync(out).size : 0;
  process.stdout.write(`${JSON.stringify({ mode, rows, seconds, peakRss, before, peakHeap, bytes })}\n`);
  process.exit(0);
}

function measureOnce(mode, file, out) {
  const res = spawnSync(process.execPath, [__filename, '--child', mode, file, out], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${mode} child failed (${res.status}): ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').pop());
}

/** The median run by time, each mode's runs interleaved with the others'; memory is the worst run's. */
function measureAll(modes, runs) {
  const results = Object.fromEntries(modes.map(([mode]) => [mode, []]));
  for (let i = 0; i < runs; i++) for (const [mode, file, out] of modes) results[mode].push(measureOnce(mode, file, out));
  return Object.fromEntries(
    Object.entries(results).map(([mode, list]) => {
      const median = [...list].sort((a, b) => a.seconds - b.seconds)[Math.floor(list.length / 2)];
      const worst = list.reduce((a, b) => (b.peakRss > a.peakRss ? b : a));
      return [mode, { ...median, peakRss: worst.peakRss, before: worst.before, peakHeap: Math.max(...list.map((r) => r.peakHeap)), runs: list.map((r) => r.seconds) }];
    }),
  );
}

const MB = 1024 * 1024;
const fmt = (r) => `${r.seconds.toFixed(2)} s   ${(r.rows / r.seconds).toFixed(0).padStart(6)} rows/s   peak RSS ${(r.peakRss / MB).toFixed(0)} MB (Δ ${((r.peakRss - r.before) / MB).toFixed(0)} MB)   peak heap ${(r.peakHeap / MB).toFixed(0)} MB`;
const spread = (r) => `[runs ${r.runs.map((s) => s.toFixed(2)).join(', ')} s]`;

async function run() {
  const terminals = arg('terminals', 10000);
  const runs = arg('runs', 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-bench-ledger-'));
  try {
    const file = path.join(dir, 'collector.db');
    const t0 = Date.now();
    const seeded = await seed(file, terminals);
    console.log(`ledger export: ${terminals} terminals (${(seeded.snapshotBytes / terminals / 1024).toFixed(1)} KB of snapshot JSON each, ${seeded.events} events), SQLite, each run in a fresh process, median of ${runs} (seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s; load average ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores)`);
    const all = measureAll(
      [
        ['raw-read', file, ''],
        ['raw-xlsx', file, path.join(dir, 'raw.xlsx')],
        ['csv', file, path.join(dir, 'ledger.csv')],
        ['xlsx', file, path.join(dir, 'ledger.xlsx')],
      ],
      runs,
    );
    const { 'raw-read': rawRead, 'raw-xlsx': rawXlsx, csv, xlsx } = all;
    for (const r of [csv, xlsx]) if (r.rows !== terminals) throw new Error(`${r.mode} wrote ${r.rows} rows, not ${terminals}`);
    const csvRatio = rawRead.seconds / csv.seconds;
    const xlsxRatio = (rawRead.seconds + rawXlsx.seconds) / xlsx.seconds;
    const verdict = (ok) => (ok ? 'met' : 'NOT met');
    console.log(`  raw read (SELECT + JSON.parse)   ${fmt(rawRead)}   ${spread(rawRead)}`);
    console.log(`  raw exceljs (pre-built strings)  ${fmt(rawXlsx)}   ${(rawXlsx.bytes / MB).toFixed(1)} MB file   ${spread(rawXlsx)}`);
    console.log(`  CSV  (writeLedgerCsv)            ${fmt(csv)}   ${(csv.bytes / MB).toFixed(1)} MB file   ${spread(csv)}`);
    console.log(`  XLSX (writeLedgerXlsx)           ${fmt(xlsx)}   ${(xlsx.bytes / MB).toFixed(1)} MB file   ${spread(xlsx)}`);
    console.log(`  ratio raw ÷ ours: CSV ${csvRatio.toFixed(2)} (raw read); XLSX ${xlsxRatio.toFixed(2)} (raw read + raw exceljs)`);
    console.log(`  goals: CSV < 1 s: ${verdict(csv.seconds < 1)}; XLSX < 3 s: ${verdict(xlsx.seconds < 3)}; XLSX < 200 MB: ${verdict(xlsx.peakRss < 200 * MB)}`);
    return { csv, xlsx, rawRead, rawXlsx, csvRatio, xlsxRatio };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
if (require.main === module) {
  const i = process.argv.indexOf('--child');
  const main = i > 0 ? () => child(process.argv[i + 1], process.argv[i + 2], process.argv[i + 3]) : run;
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
