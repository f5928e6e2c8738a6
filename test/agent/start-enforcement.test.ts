import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLinuxEnforcer } from '../../src/agent/enforcement/linux';
import { loadLocalAllow, withLocalAllow } from '../../src/agent/enforcement/local-allow';
import { createReconciler } from '../../src/agent/enforcement/reconciler';
import { silentLogger } from '../../src/agent/logger';
import { loadPolicy } from '../../src/agent/policy';
import { enforceStoredPolicy } from '../../src/agent/start-enforcement';
import { STATE_KEYS } from '../../src/agent/state-keys';
import { openEventStore } from '../../src/agent/store';
import { PolicyInput, fixedClock, type Policy } from '../../src/shared';
import { PRESETS, buildSysfs } from '../fixtures/linux/sysfs';
import { fixtureRunner, setBootId, setUsbAttr, usbAttr } from '../fixtures/linux/sysfs-enforcement';

let dir: string;
let root: string;
let dataDir: string;
const clock = fixedClock('2026-12-03T09:00:00.000Z');

function storePolicy(mode: Policy['removableMedia']['mode'], allow: unknown[] = []): void {
  const policy = { ...PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode, allow } }), version: 1, issuedAt: clock.now().toISOString(), signature: 's' };
  const store = openEventStore(path.join(dataDir, 'agent.db'), { clock });
  store.setState(STATE_KEYS.policy, JSON.stringify(policy));
  store.close();
}

/** The service's first pass, wired as the agent wires it (src/agent/main.ts). */
async function serviceFirstPass() {
  const store = openEventStore(path.join(dataDir, 'agent.db'), { clock });
  try {
    const enforcer = createLinuxEnforcer({
      systemRoot: root,
      runner: fixtureRunner(root),
      memory: { load: () => store.getState(STATE_KEYS.enforcementSet), save: (json) => store.setState(STATE_KEYS.enforcementSet, json) },
    });
    const reconciler = createReconciler({ store, enforcer, getPolicy: () => withLocalAllow(loadPolicy(store), loadLocalAllow(store)), getExceptions: () => [], logger: silentLogger, now: () => clock.now() });
    await reconciler.reconcile('cycle');
    return { events: store.readSince(0, 1000), pendingDrift: store.getState(STATE_KEYS.enforcementStartDrift) };
  } finally {
    store.close();
  }
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-start-'));
  root = path.join(dir, 'root');
  dataDir = path.join(dir, 'agent');
  buildSysfs(root, [PRESETS.keyboard('1-1'), PRESETS.stickWithSerial('1-2')]);
  setBootId(root, 'boot-1');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the start-up pass', () => {
  it('switches off a stick plugged in while the agent was stopped, and the service then records it', async () => {
    storePolicy('block');
    const result = await enforceStoredPolicy({ dataDir, systemRoot: root, platform: 'linux', runner: fixtureRunner(root), clock });
    expect(result).toMatchObject({ ran: true, mode: 'block', changed: true, failures: [] });
    expect(usbAttr(root, '1-2:1.0', 'authorized')).toBe('0');
    expect(usbAttr(root, '1-1:1.0', 'authorized')).toBe('1');
    const { events } = await serviceFirstPass();
    expect(events.filter((e) => e.type === 'device.blocked').map((e) => (e.payload as { port: string }).port)).toEqual(['1-2']);
    expect(events.map((e) => e.type)).toContain('policy.applied');
    expect(events.map((e) => e.type)).not.toContain('policy.drift_corrected');
  });

  it('leaves an allowlisted stick usable', async () => {
    storePolicy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }]);
    expect(await enforceStoredPolicy({ dataDir, systemRoot: root, platform: 'linux', runner: fixtureRunner(root), clock })).toMatchObject({ ran: true });
    expect(usbAttr(root, '1-2:1.0', 'authorized')).toBe('1');
  });

  // The start-up pass corrects a hand change made while the agent was stopped before any event
  // can be recorded; without a hand-over the correction left no policy.drift_corrected at all.
  it('hands the drift it corrected to the service, which records it once', async () => {
    storePolicy('block');
    await serviceFirstPass();
    setUsbAttr(root, '1-2:1.0', 'authorized', '1'); // switched back on by hand, agent stopped
    await enforceStoredPolicy({ dataDir, systemRoot: root, platform: 'linux', runner: fixtureRunner(root), clock });
    expect(usbAttr(root, '1-2:1.0', 'authorized')).toBe('0');
    const { events, pendingDrift } = await serviceFirstPass();
    const drift = events.filter((e) => e.type === 'policy.drift_corrected').map((e) => e.payload);
    expect(drift).toEqual([expect.objectContaining({ control: '1-2:1.0 authorized', expected: '0', found: '1' })]);
    expect(pendingDrift).toBeNull();
    const again = await serviceFirstPass();
    expect(again.events.filter((e) => e.type === 'policy.drift_corrected')).toHaveLength(1);
  });

  it('does nothing without a store, without a policy, or with a stored policy it cannot read', async () => {
    expect(await enforceStoredPolicy({ dataDir, systemRoot: root, platform: 'linux', runner: fixtureRunner(root), clock })).toEqual({ ran: false, skipped: 'no agent store yet' });
    openEventStore(path.join(dataDir, 'agent.db')).close();
    expect(await enforceStoredPolicy({ dataDir, systemRoot: root, platform: 'linux', runner: fixtureRunner(root), clock })).toMatchObject({ ran: false, skipped: 'no stored policy' });
    const store = openEventStore(path.join(dataDir, 'agent.db'));
    store.setState(STATE_KEYS.policy, JSON.stringify({ removableMedia: { mode: 'block', allow: [{ vendorId: 'nothex' }] } }));
    store.close();
    expect(await enforceStoredPolicy({ dataDir, systemRoot: root, platform: 'linux', runner: fixtureRunner(root), clock })).toMatchObject({ ran: false });
    expect(usbAttr(root, '1-2:1.0', 'authorized')).toBe('1');
  });

  it('leaves another application’s database alone', async () => {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'agent.db'), 'not a database');
    expect(await enforceStoredPolicy({ dataDir, systemRoot: root, platform: 'linux', runner: fixtureRunner(root), clock })).toMatchObject({ ran: false });
    expect(fs.readFileSync(path.join(dataDir, 'agent.db'), 'utf8')).toBe('not a database');
  });
});
