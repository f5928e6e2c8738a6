import { describe, expect, it } from 'vitest';
import {
  UnlockCodeError,
  agentTag,
  formatScope,
  makeRequestCode,
  makeUnlockCode,
  parseRequestCode,
  parseScope,
  scopeOfDevice,
  verifyUnlockCode,
  type ExceptionScope,
} from '../../src/shared';

const secret = Buffer.alloc(32, 7).toString('base64');
const otherSecret = Buffer.alloc(32, 9).toString('base64');
const stick: ExceptionScope = { vendorId: '0781', productId: '5583', serial: '4C530001' };
const request = makeRequestCode('agent-1', stick, new Uint8Array([1, 2, 3, 4, 5]));

describe('offline unlock codes', () => {
  it('fit on a phone call: 16 and 16 significant characters in dashed groups', () => {
    expect(request).toMatch(/^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{6}$/);
    const unlock = makeUnlockCode(secret, request, 60, stick);
    expect(unlock).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  });

  it('carry the terminal tag so the collector can find the terminal', () => {
    expect(parseRequestCode(request).agentTag).toBe(agentTag('agent-1'));
  });

  it('verify with the same secret and device and give back the minutes, read back loosely', () => {
    const unlock = makeUnlockCode(secret, request, 90, stick);
    expect(verifyUnlockCode(secret, request, unlock, stick)).toBe(90);
    expect(verifyUnlockCode(secret, request.toLowerCase(), unlock.toLowerCase().replace(/-/g, ' '), stick)).toBe(90);
    expect(verifyUnlockCode(secret, request, unlock.replace(/1/g, 'I').replace(/0/g, 'O'), stick)).toBe(90);
    expect(verifyUnlockCode(secret, request, makeUnlockCode(secret, request, 10_080, stick), stick)).toBe(10_080);
  });

  it('are refused on another terminal, for another request, or when a digit is wrong', () => {
    const unlock = makeUnlockCode(secret, request, 30, stick);
    expect(() => verifyUnlockCode(otherSecret, request, unlock, stick)).toThrow(UnlockCodeError);
    const other = makeRequestCode('agent-1', stick, new Uint8Array([9, 9, 9, 9, 9]));
    expect(() => verifyUnlockCode(secret, other, unlock, stick)).toThrow(UnlockCodeError);
    const last = unlock.at(-1) === 'A' ? 'B' : 'A';
    expect(() => verifyUnlockCode(secret, request, unlock.slice(0, -1) + last, stick)).toThrow(UnlockCodeError);
    expect(() => verifyUnlockCode(secret, request, 'HELLO', stick)).toThrow(/characters/);
  });

  it('cannot carry more minutes than seven days', () => {
    expect(() => makeUnlockCode(secret, request, 7 * 24 * 60 + 1, stick)).toThrow(UnlockCodeError);
    expect(() => makeUnlockCode(secret, request, 0, stick)).toThrow(UnlockCodeError);
  });
});

describe('an unlock code covered a whole vendor (regression)', () => {
  it('binds the exact device: a code made for one stick does not verify for another of the same vendor or model', () => {
    const unlock = makeUnlockCode(secret, request, 60, stick);
    expect(() => verifyUnlockCode(secret, request, unlock, { ...stick, serial: 'OTHER' })).toThrow(UnlockCodeError);
    expect(() => verifyUnlockCode(secret, request, unlock, { vendorId: '0781', productId: '5583', port: '1-2' })).toThrow(UnlockCodeError);
  });

  it('refuses to make a code for a device other than the one the request code names', () => {
    expect(() => makeUnlockCode(secret, request, 60, { ...stick, serial: '4C530002' })).toThrow(/not the one this request code was made for/);
    expect(() => makeUnlockCode(secret, request, 60, { vendorId: '0781' } as ExceptionScope)).toThrow(/one exact device/);
  });

  it('refuses old-format request and unlock codes that named no device', () => {
    expect(() => parseRequestCode('3F7K-QM2X-9ABCD')).toThrow(/old format/);
    // A version-1 unlock code: minutes in the top bits were 0–10080, version bits 00.
    const v2 = makeUnlockCode(secret, request, 60, stick);
    const first = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(v2[0]!);
    const v1 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[first & 0b00111]! + v2.slice(1);
    expect(() => verifyUnlockCode(secret, request, v1, stick)).toThrow(/old format/);
  });

  it('takes a scope only with a usable serial or a port, and reads it back as written', () => {
    expect(scopeOfDevice({ vendorId: '0781', productId: '5583', serial: ' 4C530001 ', port: '1-2' })).toEqual(stick);
    expect(scopeOfDevice({ vendorId: '0781', productId: '5583', serial: '6&1A2B&0', port: '1-2' })).toEqual({
      vendorId: '0781',
      productId: '5583',
      port: '1-2',
    });
    expect(() => scopeOfDevice({ vendorId: '0781', serial: '', port: '' })).toThrow(UnlockCodeError);
    expect(() => scopeOfDevice({ vendorId: '0781', productId: '5583', serial: '', port: '' })).toThrow(/no usable serial and no port/);
    expect(parseScope(formatScope(stick))).toEqual(stick);
    expect(parseScope('0781:5583 port 1-2')).toEqual({ vendorId: '0781', productId: '5583', port: '1-2' });
    expect(() => parseScope('0781')).toThrow(UnlockCodeError);
  });
});
