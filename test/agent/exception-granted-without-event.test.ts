import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExceptionBook } from '../../src/agent/exceptions';
import { openEventStore, type EventStore } from '../../src/agent/store';
import { makeUnlockCode } from '../../src/shared';

// Issue 12, item 8: a grant saved the active list, then appended exception.granted in a second
// commit (and expiry the other way round), so a crash between them left an active exception with
// no event, or an expired one recorded as still active.

const secret = Buffer.alloc(32, 6).toString('base64');
let dir: string;
let store: EventStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-atomic-'));
  store = openEventStore(path.join(dir, 'agent.db'));
  store.append({
    type: 'device.blocked',
    payload: { vendorId: '0781', productId: '5581', serial: 'S1', manufacturer: '', product: '', deviceClass: '00', port: '1-2' },
  });
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A store whose append of one event type fails, as a crash or a full disk there would. */
function failingOn(type: string): EventStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'append')
        return (event: { type: string }, at?: Date) => {
          if (event.type === type) throw new Error(`disk full appending ${type}`);
          return target.append(event as never, at);
        };
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('an exception grant or expiry split over several commits (regression)', () => {
  it('leaves no active exception when its exception.granted cannot be recorded', () => {
    const { requestCode, device } = createExceptionBook(store).request({ reason: 'x', minutes: 30 }, 'agent-1');
    const broken = createExceptionBook(failingOn('exception.granted'));
    expect(() => broken.redeem(makeUnlockCode(secret, requestCode, 30, device), secret)).toThrow(/disk full/);
    expect(createExceptionBook(store).active()).toEqual([]);
    // The request is still unused: the same code works once the store does.
    expect(createExceptionBook(store).redeem(makeUnlockCode(secret, requestCode, 30, device), secret).device).toEqual(device);
    expect(store.recent(1)[0]!.type).toBe('exception.granted');
  });

  it('keeps an expired exception listed until its exception.expired is recorded', () => {
    let t = new Date('2026-12-01T09:00:00Z');
    const book = createExceptionBook(store, () => t);
    const { requestCode, device } = book.request({ reason: 'x', minutes: 1 }, 'agent-1');
    book.redeem(makeUnlockCode(secret, requestCode, 1, device), secret);
    t = new Date('2026-12-01T09:02:00Z');
    expect(() => createExceptionBook(failingOn('exception.expired'), () => t).active()).toThrow(/disk full/);
    expect(store.getState('exceptions.active')).toContain(device.serial!);
    expect(book.active()).toEqual([]);
    expect(store.recent(1)[0]!.type).toBe('exception.expired');
  });

  it('records a request and its pending entry together', () => {
    expect(() => createExceptionBook(failingOn('exception.requested')).request({ reason: 'x', minutes: 30 }, 'agent-1')).toThrow(/disk full/);
    expect(JSON.parse(store.getState('exceptions.pending') ?? '[]')).toEqual([]);
  });
});
