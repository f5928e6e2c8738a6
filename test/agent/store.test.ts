import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEventStore, StoreError, type EventStore } from '../../src/agent/store';
import { EventSchemaError, GENESIS_HASH } from '../../src/shared';

let dir: string;
let file: string;
let store: EventStore | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-store-'));
  file = path.join(dir, 'agent.db');
});
afterEach(() => {
  store?.close();
  store = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const started = { type: 'agent.started', payload: { version: '0.1.0', platform: 'linux', hostname: 'pc-001' } } as const;

describe('event store', () => {
  it('appends with a gapless seq and a chain that starts at the genesis hash', () => {
    store = openEventStore(file);
    const a = store.append(started);
    const b = store.append({ type: 'agent.stopped', payload: { reason: 'once' } });
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(a.prevHash).toBe(GENESIS_HASH);
    expect(b.prevHash).toBe(a.hash);
    expect(store.verify()).toBeNull();
    expect(store.readSince(1)).toEqual([b]);
  });

  it('keeps events and the chain across reopen, in WAL mode', () => {
    store = openEventStore(file);
    store.append(started);
    store.close();
    store = openEventStore(file);
    const next = store.append(started);
    expect(next.seq).toBe(2);
    expect(store.verify()).toBeNull();
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });

  it('refuses an invalid payload before it reaches the store', () => {
    store = openEventStore(file);
    expect(() => store!.append({ type: 'device.blocked', payload: { vendorId: 'nope' } } as never)).toThrow(EventSchemaError);
    expect(() => store!.append({ type: 'made.up', payload: {} } as never)).toThrow(/unknown event type/);
    expect(store.head().seq).toBe(0);
  });

  it('tracks the acknowledged seq without going backwards or past the end', () => {
    store = openEventStore(file);
    for (let i = 0; i < 5; i++) store.append(started);
    store.setAckSeq(3);
    store.setAckSeq(2);
    expect(store.ackSeq()).toBe(3);
    expect(store.pendingCount()).toBe(2);
    store.setAckSeq(99);
    expect(store.ackSeq()).toBe(5);
  });

  it('names the seq of a row edited by hand', () => {
    store = openEventStore(file);
    for (let i = 0; i < 4; i++) store.append(started);
    store.close();
    const raw = new Database(file);
    raw.prepare(`UPDATE events SET payload = '{"version":"6.6.6","platform":"linux","hostname":"pc-001"}' WHERE seq = 3`).run();
    raw.close();
    store = openEventStore(file);
    expect(store.verify()).toEqual({ seq: 3, reason: 'hash_mismatch' });
  });

  it('names the seq after a deleted row', () => {
    store = openEventStore(file);
    for (let i = 0; i < 4; i++) store.append(started);
    store.close();
    const raw = new Database(file);
    raw.prepare('DELETE FROM events WHERE seq = 2').run();
    raw.close();
    store = openEventStore(file);
    expect(store.verify()).toEqual({ seq: 3, reason: 'seq_gap' });
  });

  it('refuses a file that is not SQLite, naming it and leaving it as it was', () => {
    fs.writeFileSync(file, 'this is a spreadsheet, not a database\n'.repeat(10));
    const before = fs.readFileSync(file);
    expect(() => openEventStore(file)).toThrow(StoreError);
    expect(() => openEventStore(file)).toThrow(file);
    expect(fs.readFileSync(file)).toEqual(before);
  });

  it("refuses another application's SQLite database without touching it", () => {
    const foreign = new Database(file);
    foreign.exec('CREATE TABLE customers (id INTEGER)');
    foreign.close();
    const before = fs.readFileSync(file);
    expect(() => openEventStore(file)).toThrow(/another application/);
    expect(fs.readFileSync(file)).toEqual(before);
  });

  it('refuses a damaged database with an error naming the file', () => {
    store = openEventStore(file);
    for (let i = 0; i < 50; i++) store.append(started);
    store.close();
    store = undefined;
    // Checkpoint so the data is in the main file, then damage the schema page.
    const raw = new Database(file);
    raw.pragma('wal_checkpoint(TRUNCATE)');
    raw.close();
    const bytes = fs.readFileSync(file);
    bytes.fill(0x5a, 100, 4096);
    fs.writeFileSync(file, bytes);
    expect(() => openEventStore(file)).toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('keeps small state values', () => {
    store = openEventStore(file);
    expect(store.getState('k')).toBeNull();
    store.setState('k', 'v1');
    store.setState('k', 'v2');
    expect(store.getState('k')).toBe('v2');
    store.deleteState('k');
    expect(store.getState('k')).toBeNull();
  });

  it('lists the newest events first, optionally by type', () => {
    store = openEventStore(file);
    store.append(started);
    store.append({ type: 'agent.stopped', payload: { reason: 'x' } });
    store.append(started);
    expect(store.recent(2).map((e) => e.seq)).toEqual([3, 2]);
    expect(store.recent(5, ['agent.stopped']).map((e) => e.seq)).toEqual([2]);
  });
});
