'use strict';
/**
 * Linux reconcile time with 50 attached USB devices, against a bare scan of the same sysfs tree,
 * in one run.
 *
 * Ours: one steady-state `reconciler.reconcile('timer')` pass exactly as the agent runs it on its
 * timer (read every device and control, evaluate the policy, compare, write nothing, record
 * nothing), with the real Linux enforcer and a real event store. Also the first pass, which
 * writes every control and records every device.
 * Raw: `readLinuxUsbDevices` alone on the same tree (the scan the inventory does): the floor no
 * reconcile can go under, since it has to read the same files. The figure is raw ÷ ours (median
 * times), like the other benchmarks' ours ÷ raw rates: 1 would mean deciding and checking every
 * control cost nothing on top of reading.
 *
 * The tree is built by the tests' own fixture builder (test/fixtures/linux/sysfs.ts, transpiled
 * here with the TypeScript compiler the repository already has), on tmpfs when /dev/shm exists.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { requireTs } = require('./require-ts');
const { createLinuxEnforcer, createReconciler } = require('../dist/agent/enforcement');
const { readLinuxUsbDevices } = require('../dist/agent/os/usb/linux');
const { openEventStore } = require('../dist/agent/store');


/** 50 devices on 4 buses: sticks (half allowlisted), keyboards, phones, card readers, composites. */
function devices(PRESETS) {
  const kinds = [
    (n, i) => PRESETS.stickWithSerial(n, `BENCH${String(i).padStart(4, '0')}`),
    (n) => PRESETS.keyboard(n),
    (n) => PRESETS.phoneMtp(n),
    (n) => PRESETS.smartCardReader(n),
    (n) => PRESETS.composite(n),
    (n) => PRESETS.stickWithoutSerial(n),
  ];
  const out = [];
  for (let i = 0; i < 50; i++) out.push(kinds[i % kinds.length](`${(i % 4) + 1}-${Math.floor(i / 4) + 1}`, i));
  return out;
}

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), p99: at(0.99) };
}

const ms = (ns) => Number(ns) / 1e6;

async function run({ iterations = Number(process.env.MAMORI_BENCH_RECONCILES ?? 300) } = {}) {
  const { PRESETS, buildSysfs } = requireTs(path.join(__dirname, '..', 'test', 'fixtures', 'linux', 'sysfs.ts'));
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'mamori-bench-reconcile-'));
  try {
    const root = path.join(dir, 'root');
    const list = devices(PRESETS);
    buildSysfs(root, list);
    const store = openEventStore(path.join(os.tmpdir(), `${path.basename(dir)}.db`));
    const allow = list.filter((d, i) => d.serial?.startsWith('BENCH') && i % 2 === 0).map((d) => ({ vendorId: d.vendorId, productId: d.productId, serial: d.serial }));
    const policy = { segment: 'mynumber', version: 1, issuedAt: '2026-11-24T00:00:00.000Z', signature: 'x', syncIntervalSeconds: 300, incidentContact: '', removableMedia: { mode: 'block', allow } };
    const runner = async () => ({ stdout: '', code: 0 });
    const reconciler = createReconciler({
      store,
      enforcer: createLinuxEnforcer({ systemRoot: root, runner }),
      getPolicy: () => policy,
      getExceptions: () => [],
      logger: { warn() {}, error() {} },
    });

    let t = process.hrtime.bigint();
    const first = await reconciler.reconcile('start');
    const firstMs = ms(process.hrtime.bigint() - t);
    const recorded = store.head().seq;

    const scans = [];
    const passes = [];
    // Warm up both, then interleave so both see the same page cache and CPU frequency.
    for (let i = 0; i < 20; i++) {
      readLinuxUsbDevices(root);
      await reconciler.reconcile('timer');
    }
    for (let i = 0; i < iterations; i++) {
      t = process.hrtime.bigint();
      const found = readLinuxUsbDevices(root);
      scans.push(ms(process.hrtime.bigint() - t));
      if (found.length < 50) throw new Error(`the scan found ${found.length} devices`);
      t = process.hrtime.bigint();
      const r = await reconciler.reconcile('timer');
      passes.push(ms(process.hrtime.bigint() - t));
      if (r.changed || r.state !== 'active') throw new Error(`a steady-state pass changed something: ${JSON.stringify(r)}`);
    }
    if (store.head().seq !== recorded) throw new Error('a steady-state pass recorded events');
    store.close();
    fs.rmSync(store.file, { force: true });
    for (const suffix of ['-wal', '-shm']) fs.rmSync(`${store.file}${suffix}`, { force: true });

    const scan = stats(scans);
    const pass = stats(passes);
    const ratio = scan.median / pass.median;
    console.log(`Linux reconcile, 50 attached USB devices (${iterations} passes, state ${first.state})`);
    console.log(`  first pass (writes every control, records ${recorded} events): ${firstMs.toFixed(1)} ms`);
    console.log(`  steady pass: median ${pass.median.toFixed(2)} ms, p99 ${pass.p99.toFixed(2)} ms`);
    console.log(`  bare scan:   median ${scan.median.toFixed(2)} ms, p99 ${scan.p99.toFixed(2)} ms`);
    console.log(`  ratio (bare scan ÷ steady pass, medians): ${ratio.toFixed(2)}`);
    return { firstMs, median: pass.median, p99: pass.p99, scanMedian: scan.median, scanP99: scan.p99, ratio };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
if (require.main === module) run().catch((err) => {
  console.error(err);
  process.exit(1);
});
