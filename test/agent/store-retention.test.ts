import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STATE_KEYS } from '../../src/agent/state-keys';
import { AGENT_RETENTION_DAYS, openEventStore, type EventStore } from '../../src/agent/store';

const DAY = 86_400_000;
const now = new Date('2026-12-01T03:00:00.000Z');
let dir: string;
let file: string;
let store: EventStore | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-store-retention-'));
  file = path.join(dir, 'agent.db');
});
afterEach(() => {
  store?.close();
  store = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const started = { type: 'agent.started', payload: { version: '0.1.0', platform: 'linux', hostname: 'pc-001' } } as const;

/** 200 events, one a day, the last one today. */
function twoHundredDays(s: EventStore): void {
  for (let day = 199; day >= 0; day--) s.append(started, new Date(now.getTime() - day * DAY));
}

describe('agent event store retention', () => {
  it('prunes acknowledged events older than 90 days in batches; the chain verifies from the local checkpoint, also after reopening', () => {
    store = openEventStore(file);
    twoHundredDays(store);
    store.setAckSeq(150);
    const cutoff = new Date(now.getTime() - AGENT_RETENTION_DAYS * DAY);
    // Events 1–109 are older than 90 days (110 is exactly 90 days old) and acknowledged.
    expect(store.pruneAcknowledged(cutoff, 32)).toBe(109);
    expect(store.readSince(0, 1)[0]!.seq).toBe(110);
    expect(store.verify()).toBeNull();
    expect(JSON.parse(store.getState(STATE_KEYS.chainCheckpoint)!)).toMatchObject({ seq: 109 });
    // Nothing more to go; new events chain on; the outbox is untouched.
    expect(store.pruneAcknowledged(cutoff)).toBe(0);
    expect(store.pendingCount()).toBe(50);
    store.append(started, now);
    store.close();
    store = openEventStore(file);
    expect(store.verify()).toBeNull();
    expect(store.head().seq).toBe(201);
  });

  it('keeps unacknowledged events however old, and the acknowledged one the next sync chains on from', () => {
    store = openEventStore(file);
    twoHundredDays(store);
    store.setAckSeq(40);
    expect(store.pruneAcknowledged(new Date(now.getTime() - AGENT_RETENTION_DAYS * DAY))).toBe(39);
    expect(store.readSince(0, 1)[0]!.seq).toBe(40);
    expect(store.readSince(store.ackSeq()).length).toBe(160);
  });

  it('detects a checkpoint edited in the store, and does not prune over a broken chain', () => {
    store = openEventStore(file);
    twoHundredDays(store);
    store.setAckSeq(200);
    store.pruneAcknowledged(new Date(now.getTime() - 150 * DAY));
    const cp = JSON.parse(store.getState(STATE_KEYS.chainCheckpoint)!) as { seq: number; hash: string };
    store.setState(STATE_KEYS.chainCheckpoint, JSON.stringify({ ...cp, hash: 'f'.repeat(64) }));
    expect(store.verify()).toEqual({ seq: cp.seq + 1, reason: 'prev_hash_mismatch' });
    expect(store.pruneAcknowledged(new Date(now.getTime() - AGENT_RETENTION_DAYS * DAY))).toBe(0);
    expect(store.readSince(0, 1)[0]!.seq).toBe(cp.seq + 1);
  });
});
