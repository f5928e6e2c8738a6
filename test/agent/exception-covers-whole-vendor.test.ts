import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { evaluateDevice } from '../../src/agent/enforcement/evaluate';
import { createExceptionBook } from '../../src/agent/exceptions';
import { createAgentService } from '../../src/agent/ipc/service';
import { saveEnrollment } from '../../src/agent/policy';
import { openEventStore, type EventStore } from '../../src/agent/store';
import { handleIpcLine, makeUnlockCode, type AgentService, type Policy, type UsbDevice } from '../../src/shared';

// Issue 12, item 1: `requestException` with only `vendorId` was accepted, evaluation then let
// every device of that vendor through on any port, and the unlock code covered them all.

const secret = Buffer.alloc(32, 5).toString('base64');
let dir: string;
let store: EventStore;
let service: AgentService;

const blocked = (serial: string, port: string) => ({
  vendorId: '0781',
  productId: '5581',
  serial,
  manufacturer: 'SanDisk',
  product: 'Ultra',
  deviceClass: '00',
  port,
  reason: 'policy block',
});
const usb = (serial: string, port: string, productId = '5581'): UsbDevice =>
  ({
    vendorId: '0781',
    productId,
    serial,
    manufacturer: 'SanDisk',
    product: 'Ultra',
    deviceClass: '00',
    port,
    rootHub: false,
    interfaces: [{ name: `${port}:1.0`, interfaceClass: '08', interfaceSubclass: '06', interfaceProtocol: '50', description: '' }],
  }) as unknown as UsbDevice;
const block = { removableMedia: { mode: 'block', allow: [] } } as unknown as Policy;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-vendor-'));
  store = openEventStore(path.join(dir, 'agent.db'));
  saveEnrollment(store, {
    collectorUrl: 'http://127.0.0.1:1',
    agentId: 'agent-7',
    agentToken: 't',
    segment: 'lgwan',
    collectorPublicKey: 'k',
    unlockSecret: secret,
    enrolledAt: '2026-11-24T00:00:00.000Z',
  });
  service = createAgentService({
    store,
    exceptions: createExceptionBook(store),
    enforcement: () => 'active',
    collectorReachable: () => false,
    syncSoon: () => {},
    reconcileNow: () => {},
  }).forPeer({ key: 'uid:1000', verified: true, uid: 1000, user: 'yamada' });
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const call = async (method: string, params: unknown) =>
  JSON.parse((await handleIpcLine(service, JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })))!) as {
    result?: { device: Record<string, string>; requestCode: string };
    error?: { data: { code: string }; message: string };
  };

describe('an exception can cover a whole vendor (regression)', () => {
  it('refuses a request that names a vendor (or any device) itself, by the field name', async () => {
    store.append({ type: 'device.blocked', payload: blocked('S1', '1-2') });
    const answer = await call('requestException', { vendorId: '0781', reason: '全部', minutes: 60 });
    expect(answer.error?.data.code).toBe('invalid_params');
    expect(answer.error?.message).toContain('vendorId');
    expect(store.recent(5).map((e) => e.type)).not.toContain('exception.requested');
  });

  it('takes the device from the recorded device.blocked: ids and serial, or the port when the serial is unusable', async () => {
    const a = store.append({ type: 'device.blocked', payload: blocked('S1', '1-2') });
    const b = store.append({ type: 'device.blocked', payload: blocked('', '1-4') });
    expect((await call('requestException', { blockedSeq: a.seq, reason: 'x', minutes: 30 })).result.device).toEqual({
      vendorId: '0781',
      productId: '5581',
      serial: 'S1',
    });
    expect((await call('requestException', { blockedSeq: b.seq, reason: 'x', minutes: 30 })).result.device).toEqual({
      vendorId: '0781',
      productId: '5581',
      port: '1-4',
    });
    const notBlocked = store.append({ type: 'session.lock', payload: { source: 'session' } });
    expect((await call('requestException', { blockedSeq: notBlocked.seq, reason: 'x', minutes: 30 })).error?.data.code).toBe('no_device');
    expect((await call('requestException', { blockedSeq: 9999, reason: 'x', minutes: 30 })).error?.data.code).toBe('no_device');
  });

  it('refuses a blocked device with neither a usable serial nor a port', async () => {
    const seq = store.append({ type: 'device.blocked', payload: blocked('6&1A2B3C&0', '') }).seq;
    const answer = await call('requestException', { blockedSeq: seq, reason: 'x', minutes: 30 });
    expect(answer.error?.data.code).toBe('no_device');
    expect(answer.error?.message).toContain('no usable serial and no port');
  });

  it('grants by unlock code only the exact device: not another stick of the vendor, the model, or another port', async () => {
    const seq = store.append({ type: 'device.blocked', payload: blocked('S1', '1-2') }).seq;
    const { requestCode, device } = (await call('requestException', { blockedSeq: seq, reason: 'x', minutes: 60 })).result;
    const granted = (await call('redeemUnlockCode', { code: makeUnlockCode(secret, requestCode, 60, device) })).result;
    expect(granted.device).toEqual({ vendorId: '0781', productId: '5581', serial: 'S1' });
    const active = createExceptionBook(store).active();
    const now = new Date();
    expect(evaluateDevice(usb('S1', '1-3'), block, active, now).decision).toBe('allow');
    expect(evaluateDevice(usb('S2', '1-2'), block, active, now).decision).toBe('block');
    expect(evaluateDevice(usb('S1', '1-2', '5583'), block, active, now).decision).toBe('block');
    expect(evaluateDevice(usb('', '1-2'), block, active, now).decision).toBe('block');
  });

  it('never matches an exception broader than one device, such as one an older agent stored', () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const now = new Date();
    for (const device of [
      { vendorId: '0781' },
      { vendorId: '0781', productId: '5581' },
      { port: '1-2' },
      { vendorId: '0781', productId: '5581', serial: 'S1', port: '1-2' },
    ]) {
      expect(evaluateDevice(usb('S1', '1-2'), block, [{ device, expiresAt: until }], now).decision).toBe('block');
    }
    const portOnly = { device: { vendorId: '0781', productId: '5581', port: '1-2' }, expiresAt: until };
    expect(evaluateDevice(usb('', '1-2'), block, [portOnly], now).decision).toBe('allow');
    // A port exception does not let a stick with a real serial in on that port.
    expect(evaluateDevice(usb('S9', '1-2'), block, [portOnly], now).decision).toBe('block');
  });

  it('refuses an unlock code made for another device of the same vendor', async () => {
    const seq = store.append({ type: 'device.blocked', payload: blocked('S1', '1-2') }).seq;
    const { requestCode } = (await call('requestException', { blockedSeq: seq, reason: 'x', minutes: 60 })).result;
    // Made as an old collector would, for the vendor alone, cannot even be produced now; one for another serial fails.
    expect(() => makeUnlockCode(secret, requestCode, 60, { vendorId: '0781', productId: '5581', serial: 'S2' })).toThrow();
    expect((await call('redeemUnlockCode', { code: 'AAAA-AAAA-AAAA-AAAA' })).error?.data.code).toBe('unlock_refused');
    expect(createExceptionBook(store).active()).toEqual([]);
  });
});
