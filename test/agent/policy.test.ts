import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acceptPolicy, loadPolicy, type Enrollment } from '../../src/agent/policy';
import { nextDelayMs } from '../../src/agent/backoff';
import { openEventStore, type EventStore } from '../../src/agent/store';
import { freshnessSigningPayload, policyOfResponse, policySigningPayload, type Policy, type PolicyResponse, type UnsignedPolicy } from '../../src/shared';

/** The fields a signature covers. */
function unsigned(response: PolicyResponse): UnsignedPolicy {
  const { signature: _signature, ...rest } = policyOfResponse(response);
  return rest;
}

const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
const pinned = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');

function sign(doc: UnsignedPolicy, key = privateKey): Policy {
  return { ...doc, signature: crypto.sign(null, Buffer.from(policySigningPayload(doc)), key).toString('base64') };
}

/** A policy as the collector serves it: with its signed statement that it is current now. */
function served(doc: Policy, at = new Date(), key = privateKey): PolicyResponse {
  const statement = { segment: doc.segment, version: doc.version, at: at.toISOString() };
  return {
    ...doc,
    freshness: { ...statement, signature: crypto.sign(null, Buffer.from(freshnessSigningPayload(statement)), key).toString('base64') },
    rotations: [],
  };
}

function policy(version: number, mode: 'block' | 'readonly' = 'block'): PolicyResponse {
  return served(
    sign({
      segment: 'mynumber',
      version,
      removableMedia: { mode, allow: [] },
      syncIntervalSeconds: 60,
      incidentContact: 'CSIRT 1234',
      issuedAt: '2026-11-22T09:00:00.000Z',
    }),
  );
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

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-policy-'));
  store = openEventStore(path.join(dir, 'agent.db'));
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const types = () => store.readSince(0).map((e) => e.type);

describe('policy delivery on the agent', () => {
  it('keeps a policy signed by the pinned key for the reconciler to enforce', () => {
    expect(acceptPolicy(store, policy(1), enrollment)).toBe('applied');
    expect(acceptPolicy(store, policy(1), enrollment)).toBe('unchanged');
    expect(loadPolicy(store)?.version).toBe(1);
    expect(types()).toEqual([]);
  });

  it('keeps the last good policy and records tamper once when a signature is forged', () => {
    acceptPolicy(store, policy(1), enrollment);
    const other = crypto.generateKeyPairSync('ed25519').privateKey;
    const forged = served(sign(unsigned(policy(2, 'readonly')), other), new Date(), other);
    expect(acceptPolicy(store, forged, enrollment)).toBe('rejected');
    expect(acceptPolicy(store, forged, enrollment)).toBe('rejected');
    expect(loadPolicy(store)?.removableMedia.mode).toBe('block');
    expect(types()).toEqual(['tamper.detected']);
  });

  it('refuses a field changed after signing', () => {
    const doc = { ...policy(3), removableMedia: { mode: 'allow' as const, allow: [] } };
    expect(acceptPolicy(store, doc, enrollment)).toBe('rejected');
    expect(loadPolicy(store)).toBeNull();
  });

  it('refuses a replayed older version and another segment', () => {
    acceptPolicy(store, policy(5), enrollment);
    expect(acceptPolicy(store, policy(4), enrollment)).toBe('rejected');
    const lgwan = served(sign({ ...unsigned(policy(6)), segment: 'lgwan' }));
    expect(acceptPolicy(store, lgwan, enrollment)).toBe('rejected');
    expect(loadPolicy(store)?.version).toBe(5);
  });
});

describe('sync timing', () => {
  it('waits the policy interval while the collector answers', () => {
    expect(nextDelayMs(300, 0)).toBe(300_000);
  });

  it('backs off exponentially with jitter while offline, never beyond the interval', () => {
    expect(nextDelayMs(300, 1, () => 0)).toBe(2_500);
    expect(nextDelayMs(300, 1, () => 1)).toBe(5_000);
    expect(nextDelayMs(300, 3, () => 1)).toBe(20_000);
    expect(nextDelayMs(300, 30, () => 1)).toBe(300_000);
  });
});
