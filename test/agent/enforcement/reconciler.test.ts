import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createReconciler } from '../../../src/agent/enforcement/reconciler';
import type { Enforcer, EnforcerPass } from '../../../src/agent/enforcement/types';
import { silentLogger } from '../../../src/agent/logger';
import { openEventStore, type EventStore } from '../../../src/agent/store';
import { PolicyInput, fixedClock, type Policy, type UsbDevice } from '../../../src/shared';

const clock = fixedClock('2031-01-02T03:04:05.000Z');
let dir: string;
let store: EventStore;
const policy: Policy = {
  ...PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode: 'block', allow: [] } }),
  version: 1,
  issuedAt: clock.now().toISOString(),
  signature: 's',
};

const LONG_PRODUCT = `${'x'.repeat(1023)}😀`;

function stick(product: string, port = 'USB\\VID_0781&PID_5581\\S1'): UsbDevice {
  return {
    port,
    vendorId: '0781',
    productId: '5581',
    serial: 'S1',
    manufacturer: 'SanDisk',
    product,
    deviceClass: '00',
    authorized: null,
    rootHub: false,
    interfaces: [
      { name: `${port}:1.0`, interfaceClass: '08', interfaceSubClass: '06', interfaceProtocol: '50', description: '', authorized: null, driver: '' },
    ],
  };
}

/** An enforcer as pnputil or system_profiler output makes one: devices as the OS tool printed them. */
function toolEnforcer(devices: () => UsbDevice[], pass: () => EnforcerPass = () => ({ drift: [], failures: [], changed: false })): Enforcer {
  return { devices: async () => devices(), enforce: async () => pass() };
}

const types = () => store.readSince(0).map((e) => e.type);
const warnings = () =>
  store
    .readSince(0)
    .filter((e) => e.type === 'agent.warning')
    .map((e) => e.payload as { component: string; code: string; message: string });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-reconciler-'));
  store = openEventStore(path.join(dir, 'agent.db'), { clock });
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('reconciler robustness', () => {
  it('a USB product of 1,023 characters and an emoji from an OS tool is recorded, not a failed pass', async () => {
    // A surrogate pair cut in half by a 1,024-unit bound used to make the event unhashable.
    const cut = LONG_PRODUCT.slice(0, 1024);
    const r = createReconciler({
      store,
      enforcer: toolEnforcer(() => [stick(cut)]),
      getPolicy: () => policy,
      getExceptions: () => [],
      logger: silentLogger,
      now: () => clock.now(),
    });
    const result = await r.reconcile('start');
    expect(result.state).toBe('active');
    const attached = store.readSince(0).find((e) => e.type === 'device.attached')!;
    expect((attached.payload as { product: string }).product).toBe(`${'x'.repeat(1023)}\uFFFD`);
    expect(types()).toContain('device.blocked');
    expect(attached.at).toBe('2031-01-02T03:04:05.000Z');
    expect(store.verify()).toBeNull();
  });

  it('an event the store refuses is recorded as an agent.warning and the other events still are', async () => {
    const drift = { control: `${'c'.repeat(2000)} authorized`, expected: '0', found: '1', tamper: false };
    const r = createReconciler({
      store,
      enforcer: toolEnforcer(
        () => [stick('Ultra')],
        () => ({ drift: [drift], failures: [], changed: true }),
      ),
      getPolicy: () => policy,
      getExceptions: () => [],
      logger: silentLogger,
    });
    const result = await r.reconcile('start');
    expect(result.state).toBe('active');
    expect(types()).toEqual(['device.attached', 'device.blocked', 'agent.warning', 'policy.applied']);
    expect(warnings()[0]).toMatchObject({ component: 'enforcement', code: 'event_refused' });
    expect(warnings()[0]!.message).toMatch(/^policy\.drift_corrected could not be recorded/);
    expect(store.verify()).toBeNull();
  });

  it('a store error in reconcile is a warning, not a failed cycle', async () => {
    let full = true;
    // The real store, whose transactions fail as SQLite's do on a full disk.
    const flaky: EventStore = {
      ...store,
      transaction: (fn) => {
        if (full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
        return store.transaction(fn);
      },
    };
    const r = createReconciler({
      store: flaky,
      enforcer: toolEnforcer(() => [stick('Ultra')]),
      getPolicy: () => policy,
      getExceptions: () => [],
      logger: silentLogger,
    });
    const result = await r.reconcile('cycle');
    expect(result).toMatchObject({ state: 'degraded', reasons: ['store_error'] });
    expect(r.reasons()).toEqual(['store_error']);
    expect(warnings()).toEqual([{ component: 'enforcement', code: 'store_error', message: 'database or disk is full' }]);

    // Once the store writes again, the next pass records what it missed and is active.
    full = false;
    expect(await r.reconcile('timer')).toMatchObject({ state: 'active' });
    expect(r.reasons()).toEqual([]);
    expect(types()).toEqual(['agent.warning', 'device.attached', 'device.blocked', 'policy.applied']);
  });

  it('a pass that cannot list devices or apply a control says why it is degraded', async () => {
    const r = createReconciler({
      store,
      enforcer: {
        devices: async () => Promise.reject(new Error('pnputil: not found')),
        enforce: async () => ({ drift: [], failures: ['reg add exited 5'], changed: false }),
      },
      getPolicy: () => policy,
      getExceptions: () => [],
      logger: silentLogger,
    });
    expect(await r.reconcile('start')).toMatchObject({ state: 'degraded', reasons: ['devices_unreadable', 'controls_not_applied'] });
  });
});
