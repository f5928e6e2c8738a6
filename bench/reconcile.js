'use strict';
/**
 * Reconcile time with 50 attached devices (median and p99 of repeated passes with nothing to
 * change, the steady state) against a bare scan of the same sysfs tree in the same run.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { openEventStore } = require('../dist/agent/store');
const { createLinuxEnforcer, createReconciler } = require('../dist/agent/enforcement');
const { readLinuxUsbDevices } = require('../dist/agent/inventory/linux-usb');
const { silentLogger } = require('../dist/agent/logger');

/** A sysfs tree of `count` devices: sticks, keyboards and card readers behind one root hub. */
function buildTree(root, count) {
  const ctrl = path.join(root, 'sys', 'devices', 'pci0000:00', '0000:00:14.0');
  const bus = path.join(root, 'sys', 'bus', 'usb');
  fs.mkdirSync(path.join(bus, 'devices'), { recursive: true });
  fs.writeFileSync(path.join(bus, 'drivers_probe'), '');
  const dev = (rel, attrs) => {
    const dir = path.join(ctrl, rel);
    fs.mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(attrs)) fs.writeFileSync(path.join(dir, k), `${v}\n`);
    fs.symlinkSync(path.relative(path.join(bus, 'devices'), dir), path.join(bus, 'devices', path.basename(rel)));
  };
  dev('usb1', { idVendor: '1d6b', idProduct: '0002', bDeviceClass: '09', authorized: 1, authorized_default: 1, interface_authorized_default: 1 });
  const kinds = [['0781', '5581', '08'], ['046d', 'c31c', '03'], ['04e6', '5116', '0b']];
  for (let i = 0; i < count; i++) {
    const [v, p, cls] = kinds[i % kinds.length];
    const name = `1-${i + 1}`;
    dev(`usb1/${name}`, { idVendor: v, idProduct: p, bDeviceClass: '00', authorized: 1, serial: `SN${i}`, product: `device ${i}` });
    dev(`usb1/${name}/${name}:1.0`, { bInterfaceClass: cls, bInterfaceSubClass: '00', bInterfaceProtocol: '00', authorized: 1 });
  }
}

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] };
}

async function run({ devices = 50, rounds = 200 } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-bench-reconcile-'));
  try {
    buildTree(root, devices);
    const store = openEventStore(path.join(root, 'agent.db'));
    const policy = { segment: 'mynumber', version: 1, issuedAt: '2026-11-24T00:00:00.000Z', signature: 's', syncIntervalSeconds: 300, incidentContact: '', removableMedia: { mode: 'block', allow: [] } };
    const reconciler = createReconciler({
      store,
      enforcer: createLinuxEnforcer({ systemRoot: root, runner: async () => ({ stdout: '', code: 0 }) }),
      getPolicy: () => policy,
      getExceptions: () => [],
      logger: silentLogger,
    });
    await reconciler.reconcile('start'); // the first pass blocks the sticks; measure the steady state
    const pass = [];
    const scan = [];
    for (let i = 0; i < rounds; i++) {
      let t = process.hrtime.bigint();
      readLinuxUsbDevices(root);
      scan.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      await reconciler.reconcile('timer');
      pass.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    store.close();
    const p = stats(pass);
    const s = stats(scan);
    console.log(`reconcile with ${devices} attached devices (${rounds} passes, nothing to change)`);
    console.log(`  reconcile median ${p.median.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms   bare scan median ${s.median.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms   ratio (scan ÷ reconcile, median) ${(s.median / p.median).toFixed(2)}`);
    return { reconcile: p, scan: s };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

module.exports = { run };
if (require.main === module) run().catch((err) => { console.error(err); process.exit(1); });
