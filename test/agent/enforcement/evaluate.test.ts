import { describe, expect, it } from 'vitest';
import { evaluateDevice, isRemovableMediaInterface, matchesAllowEntry } from '../../../src/agent/enforcement/evaluate';
import { PolicyInput, type Policy, type UsbDevice } from '../../../src/shared';

const now = new Date('2026-11-24T09:00:00Z');
function policy(mode: Policy['removableMedia']['mode'], allow: unknown[] = []): Policy {
  const input = PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode, allow } });
  return { ...input, version: 3, issuedAt: now.toISOString(), signature: 'x' };
}
function device(over: Partial<UsbDevice> & { classes?: string[] }): UsbDevice {
  const { classes = ['08'], ...rest } = over;
  return {
    port: '1-2', vendorId: '0781', productId: '5581', serial: '4C530001230101109473', manufacturer: 'SanDisk', product: 'Ultra', deviceClass: '00', authorized: true, rootHub: false,
    interfaces: classes.map((c, i) => ({ name: `1-2:1.${i}`, interfaceClass: c, interfaceSubClass: '00', interfaceProtocol: '00', description: '', authorized: true, driver: '' })),
    ...rest,
  };
}

describe('what counts as removable media', () => {
  it('is mass storage, still image and a vendor interface named MTP, and nothing else', () => {
    expect(isRemovableMediaInterface({ interfaceClass: '08', description: '' })).toBe(true);
    expect(isRemovableMediaInterface({ interfaceClass: '06', description: '' })).toBe(true);
    expect(isRemovableMediaInterface({ interfaceClass: 'ff', description: 'MTP' })).toBe(true);
    for (const cls of ['03', '09', '0b', '01', '0e', '07', '02', 'e0']) expect(isRemovableMediaInterface({ interfaceClass: cls, description: '' })).toBe(false);
    expect(isRemovableMediaInterface({ interfaceClass: 'ff', description: 'ADB Interface' })).toBe(false);
  });
});

describe('policy evaluation', () => {
  it('blocks a stick, never a keyboard, hub or card reader', () => {
    expect(evaluateDevice(device({}), policy('block'), [], now)).toMatchObject({ decision: 'block', interfaces: ['1-2:1.0'] });
    for (const classes of [['03', '03'], ['09'], ['0b']]) {
      expect(evaluateDevice(device({ classes }), policy('block'), [], now)).toMatchObject({ decision: 'allow', interfaces: [] });
    }
  });

  it('touches only the storage interface of a composite device', () => {
    expect(evaluateDevice(device({ classes: ['03', '08'] }), policy('block'), [], now).interfaces).toEqual(['1-2:1.1']);
  });

  it('follows each mode', () => {
    expect(evaluateDevice(device({}), policy('readonly'), [], now).decision).toBe('readonly');
    expect(evaluateDevice(device({}), policy('audit'), [], now).decision).toBe('audit');
    expect(evaluateDevice(device({}), policy('allow'), [], now).decision).toBe('allow');
  });

  it('allows an allowlisted serial but not a serial-less stick of another model, nor a pseudo-serial', () => {
    const p = policy('block', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473', note: '総務課 配布用' }]);
    expect(evaluateDevice(device({}), p, [], now)).toMatchObject({ decision: 'allow', reason: 'allowlist: 総務課 配布用' });
    expect(evaluateDevice(device({ serial: 'OTHER' }), p, [], now).decision).toBe('block');
    expect(evaluateDevice(device({ vendorId: '090c', productId: '1000', serial: '' }), p, [], now)).toMatchObject({ decision: 'block', flags: { missingSerial: true } });
    const pseudo = device({ serial: '7&2A3B4C5D&0&1' });
    expect(matchesAllowEntry(pseudo, { vendorId: '0781', productId: '5581', serial: '7&2A3B4C5D&0&1' })).toBe(false);
    expect(evaluateDevice(pseudo, p, [], now).flags.pseudoSerial).toBe(true);
  });

  it('allows a whole model when the entry names no serial', () => {
    expect(evaluateDevice(device({ serial: '' }), policy('block', [{ vendorId: '0781', productId: '5581' }]), [], now).decision).toBe('allow');
  });

  it('lets an allowlisted stick write even under readonly', () => {
    expect(evaluateDevice(device({}), policy('readonly', [{ vendorId: '0781', productId: '5581' }]), [], now).decision).toBe('allow');
  });

  it('honours an exception for its device until it expires, and not for another stick', () => {
    const ex = { requestId: 'r1', device: { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }, expiresAt: '2026-11-24T10:00:00Z', via: 'unlock-code' as const };
    expect(evaluateDevice(device({}), policy('block'), [ex], now)).toMatchObject({ decision: 'allow', reason: expect.stringContaining('temporary exception') });
    expect(evaluateDevice(device({ serial: 'OTHER' }), policy('block'), [ex], now).decision).toBe('block');
    expect(evaluateDevice(device({}), policy('block'), [ex], new Date('2026-11-24T10:00:01Z')).decision).toBe('block');
    const portOnly = { ...ex, device: { port: '1-2' } };
    expect(evaluateDevice(device({}), policy('block'), [portOnly], now).decision).toBe('block');
  });
});
