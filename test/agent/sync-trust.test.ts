import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { enrollAgent } from '../../src/agent/enroll';
import { acceptPolicy, loadPolicy, type Enrollment } from '../../src/agent/policy';
import { openEventStore, type EventStore } from '../../src/agent/store';
import { syncEvents } from '../../src/agent/sync';
import { CollectorRefusedError, createSyncClient, type SyncClient } from '../../src/agent/sync-client';
import {
  POLICY_FRESHNESS_MAX_AGE_MS,
  freshnessSigningPayload,
  policySigningPayload,
  type Policy,
  type PolicyResponse,
  type StoredEvent,
} from '../../src/shared';

const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
const pinned = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');

function signed(version: number, mode: 'block' | 'allow' = 'block'): Policy {
  const doc = {
    segment: 'mynumber' as const,
    version,
    removableMedia: { mode, allow: [] },
    syncIntervalSeconds: 60,
    incidentContact: '',
    issuedAt: new Date().toISOString(),
  };
  return { ...doc, signature: crypto.sign(null, Buffer.from(policySigningPayload(doc)), privateKey).toString('base64') };
}
function served(policy: Policy, at = new Date()): PolicyResponse {
  const statement = { segment: policy.segment, version: policy.version, at: at.toISOString() };
  return {
    ...policy,
    freshness: { ...statement, signature: crypto.sign(null, Buffer.from(freshnessSigningPayload(statement)), privateKey).toString('base64') },
    rotations: [],
  };
}

let dir: string;
let store: EventStore;
const enrollment: Enrollment = {
  collectorUrl: 'http://127.0.0.1:1',
  agentId: 'a1',
  agentToken: 't',
  segment: 'mynumber',
  collectorPublicKey: pinned,
  unlockSecret: 's',
  enrolledAt: '2026-11-22T09:00:00.000Z',
};
const tampers = () => store.readSince(0).filter((e) => e.type === 'tamper.detected');

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-synctrust-'));
  store = openEventStore(path.join(dir, 'agent.db'));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('policy replay and malformed policies', () => {
  it('refuses a validly signed older version replayed after a newer one was seen (a MITM could downgrade)', () => {
    const v2 = served(signed(2));
    expect(acceptPolicy(store, served(signed(3)), enrollment)).toBe('applied');
    expect(acceptPolicy(store, v2, enrollment)).toBe('rejected');
    expect(loadPolicy(store)?.version).toBe(3);
  });

  it('refuses a replayed response whose freshness statement is stale, even to an agent that never saw newer', () => {
    const old = served(signed(1, 'allow'), new Date(Date.now() - POLICY_FRESHNESS_MAX_AGE_MS - 60_000));
    expect(acceptPolicy(store, old, enrollment)).toBe('rejected');
    expect(acceptPolicy(store, old, enrollment)).toBe('rejected');
    expect(loadPolicy(store)).toBeNull();
    expect(tampers()).toHaveLength(1);
    expect(String((tampers()[0]!.payload as { detail: string }).detail)).toContain('freshness');
    // A statement for another version does not vouch for this one.
    const mixed = { ...served(signed(1)), freshness: served(signed(2)).freshness };
    expect(acceptPolicy(store, mixed, enrollment)).toBe('rejected');
    // A policy without a statement is refused from the policy endpoint.
    expect(acceptPolicy(store, signed(1), enrollment)).toBe('rejected');
  });

  it('records tamper.detected for a policy answer that is not JSON, not "collector unreachable"', async () => {
    const client = createSyncClient({
      baseUrl: 'http://collector',
      agentId: 'a1',
      agentToken: 't',
      fetch: async () => new Response('<html>hijacked</html>', { status: 200 }),
    });
    const answer = await client.getPolicy();
    expect(acceptPolicy(store, answer, enrollment)).toBe('rejected');
    expect(tampers()).toHaveLength(1);
  });

  it('keeps a rejection and its tamper event together: a failed commit leaves neither (they were separate commits)', () => {
    const failing = new Proxy(store, {
      get(target, prop) {
        if (prop === 'setState')
          return (key: string, value: string) =>
            key === 'policy.rejected'
              ? (() => {
                  throw new Error('disk full');
                })()
              : target.setState(key, value);
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    expect(() => acceptPolicy(failing, { nonsense: true }, enrollment)).toThrow('disk full');
    expect(tampers()).toHaveLength(0);
  });
});

describe('enroll --pubkey', () => {
  const client = (key: string): SyncClient =>
    ({
      enroll: async () => ({ agentId: 'a1', agentToken: 't', segment: 'mynumber', policy: signed(1), collectorPublicKey: key, unlockSecret: 's' }),
    }) as unknown as SyncClient;

  it('refuses enrollment when the collector presents another key than the one pinned (only provision pinned)', async () => {
    const other = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    await expect(
      enrollAgent({ store, collectorUrl: 'http://collector', token: 'enr', systemRoot: dir, expectedPublicKey: pinned, client: client(other) }),
    ).rejects.toThrow(/different public key/);
    expect(store.getState('enrollment')).toBeNull();
    await expect(
      enrollAgent({ store, collectorUrl: 'http://collector', token: 'enr', systemRoot: dir, expectedPublicKey: 'bm90IGEga2V5', client: client(pinned) }),
    ).rejects.toThrow(/--pubkey/);
    const e = await enrollAgent({ store, collectorUrl: 'http://collector', token: 'enr', systemRoot: dir, expectedPublicKey: pinned, client: client(pinned) });
    expect(e.collectorPublicKey).toBe(pinned);
    expect(loadPolicy(store)?.version).toBe(1);
  });
});

describe('the agent checks what it sends', () => {
  function editRow(seq: number, sqlText: string): void {
    const db = new Database(store.file);
    db.prepare(sqlText).run(seq);
    db.close();
  }

  it('delivers the sound events before an edited one and records tamper.detected once across retries', async () => {
    for (let i = 0; i < 5; i++) store.append({ type: 'agent.stopped', payload: { reason: `r${i}` } });
    editRow(4, 'UPDATE events SET payload = \'{"reason":"edited"}\' WHERE seq = ?');
    const posted: StoredEvent[][] = [];
    const client = {
      postEvents: async (events: StoredEvent[]) => {
        posted.push(events);
        if (events[0]!.seq >= 4) throw new CollectorRefusedError(422, 'chain_broken', 'hash chain broken at seq 4', { seq: 4 });
        return events[events.length - 1]!.seq;
      },
    } as unknown as SyncClient;
    await expect(syncEvents(store, client)).rejects.toThrow(CollectorRefusedError);
    await expect(syncEvents(store, client)).rejects.toThrow(CollectorRefusedError);
    expect(posted[0]!.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(store.ackSeq()).toBe(3);
    // The break was still sent, so that the collector flags the terminal with its seq.
    expect(posted[1]![0]!.seq).toBe(4);
    expect(tampers()).toHaveLength(1);
    expect(String((tampers()[0]!.payload as { detail: string }).detail)).toContain('seq 4');
  });

  it('sends mamori-head with every call once enrolled', async () => {
    store.append({ type: 'agent.stopped', payload: { reason: 'x' } });
    const seen: string[] = [];
    const client = createSyncClient({
      baseUrl: 'http://collector',
      agentId: 'a1',
      agentToken: 't',
      head: () => store.head(),
      fetch: async (_url, init) => {
        seen.push(String((init?.headers as Record<string, string>)['mamori-head']));
        return new Response('[]', { status: 200 });
      },
    });
    await client.getApprovedExceptions();
    expect(seen).toEqual([`1:${store.head().hash}`]);
  });
});

describe('putInventory', () => {
  it('does not take a 2xx answer whose body cannot be read for success (it did)', async () => {
    const broken = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"ok"'));
        controller.error(new Error('connection reset'));
      },
    });
    const client = createSyncClient({ baseUrl: 'http://collector', agentId: 'a1', agentToken: 't', fetch: async () => new Response(broken, { status: 200 }) });
    await expect(client.putInventory({} as never)).rejects.toThrow(/could not be read/);
  });
});
