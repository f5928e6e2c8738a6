import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDeviceHints } from '../../src/agent/enforcement/hints';
import { createLinuxEnforcer } from '../../src/agent/enforcement/linux';
import type { InventoryCollector } from '../../src/agent/inventory';
import { silentLogger } from '../../src/agent/logger';
import { connectIpc } from '../../src/agent/ipc/socket';
import { createAgent, type Agent } from '../../src/agent/main';
import { openEventStore } from '../../src/agent/store';
import { InventorySnapshot, PolicyInput, createIpcClient, fixedClock, type Policy } from '../../src/shared';
import { PRESETS, buildSysfs } from '../fixtures/linux/sysfs';
import { fixtureRunner } from '../fixtures/linux/sysfs-enforcement';

let dir: string;
let root: string;
let collects: number;
const clock = fixedClock('2031-05-06T07:08:09.000Z');

/** An inventory source that counts cycles (each cycle collects once) and returns a small snapshot. */
function countingInventory(): InventoryCollector {
  return {
    async collect() {
      collects += 1;
      return InventorySnapshot.parse({ collectedAt: clock.now().toISOString(), hostname: 'pc-01', agentVersion: 'test' });
    },
  };
}

/** A block-mode policy kept in the store as an accepted one would be. */
function keepPolicy(): void {
  const store = openEventStore(path.join(dir, 'data', 'agent.db'));
  const policy: Policy = {
    ...PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode: 'block', allow: [] } }),
    version: 1,
    issuedAt: clock.now().toISOString(),
    signature: 's',
  };
  store.setState('policy.current', JSON.stringify(policy));
  store.close();
}

function agent(extra: { hintsFail?: boolean } = {}): Agent {
  return createAgent({
    dataDir: path.join(dir, 'data'),
    systemRoot: root,
    ipcPath: path.join(dir, 'agent.sock'),
    logger: silentLogger,
    clock,
    inventory: countingInventory(),
    logins: { readNew: async () => ({ events: [], badRecords: 0, state: [] }) },
    enforcer: createLinuxEnforcer({ systemRoot: root, runner: fixtureRunner(root) }),
    hints: createDeviceHints({
      logger: silentLogger,
      load: () => {
        if (extra.hintsFail) throw new Error('usb-detection: libudev.so.1 not found');
        return { startMonitoring() {}, stopMonitoring() {}, on() {}, off() {} };
      },
    }),
  });
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-agent-main-'));
  root = path.join(dir, 'root');
  buildSysfs(root, [PRESETS.keyboard()]);
  collects = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the agent service loop', () => {
  it('a cycle requested during the wait runs one cycle', async () => {
    const a = agent();
    const running = a.runForever();
    await until(() => collects === 1);
    // Now waiting (five minutes unenrolled): an incident or a request asks for a cycle.
    a.requestCycle();
    await until(() => collects === 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(collects).toBe(2);
    a.stop();
    await running;
  });

  it('status reports degraded when device notices are unavailable, and says why', async () => {
    keepPolicy();
    const a = agent({ hintsFail: true });
    const running = a.runForever();
    try {
      await until(() => collects === 1);
      const client = createIpcClient(await connectIpc(path.join(dir, 'agent.sock')));
      const status = await client.status(undefined);
      client.close();
      expect(status.enforcement).toBe('degraded');
      expect(status.degradedReasons).toEqual(['device_notices_unavailable']);
      // The first cycle's snapshot predates the hints; the next one carries the same truth.
      a.requestCycle();
      await until(() => collects === 2);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      a.stop();
      await running;
    }
    const store = openEventStore(path.join(dir, 'data', 'agent.db'));
    const snapshot = JSON.parse(store.getState('inventory.snapshot')!) as InventorySnapshot;
    const warnings = store
      .readSince(0)
      .filter((e) => e.type === 'agent.warning')
      .map((e) => (e.payload as { component: string }).component);
    const started = store.readSince(0).find((e) => e.type === 'agent.started')!;
    store.close();
    expect(snapshot).toMatchObject({ enforcement: 'degraded', enforcementReasons: ['device_notices_unavailable'] });
    expect(warnings).toEqual(['device-hints']);
    // Events are dated by the injected clock, not the wall clock.
    expect(started.at).toBe('2031-05-06T07:08:09.000Z');
  });
});
