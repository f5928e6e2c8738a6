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
    port: '1-2',
    vendorId: '0781',
    productId: '5581',
    serial: '4C530001230101109473',
    manufacturer: 'SanDisk',
    product: 'Ultra',
    deviceClass: '00',
    authorized: true,
    rootHub: false,
    interfaces: classes.map((c, i) => ({
      name: `1-2:1.${i}`,
      interfaceClass: c,
      interfaceSubClass: '00',
      interfaceProtocol: '00',
      description: '',
      authorized: true,
      driver: '',
    })),
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
    expect(evaluateDevice(device({ vendorId: '090c', productId: '1000', serial: '' }), p, [], now)).toMatchObject({
      decision: 'block',
      flags: { missingSerial: true },
    });
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
    const ex = {
      requestId: 'r1',
      device: { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' },
      expiresAt: '2026-11-24T10:00:00Z',
      via: 'unlock-code' as const,
    };
    expect(evaluateDevice(device({}), policy('block'), [ex], now)).toMatchObject({ decision: 'allow', reason: expect.stringContaining('temporary exception') });
    expect(evaluateDevice(device({ serial: 'OTHER' }), policy('block'), [ex], now).decision).toBe('block');
    expect(evaluateDevice(device({}), policy('block'), [ex], new Date('2026-11-24T10:00:01Z')).decision).toBe('block');
    const portOnly = { ...ex, device: { port: '1-2' } };
    expect(evaluateDevice(device({}), policy('block'), [portOnly], now).decision).toBe('block');
  });
});

describe('a corpus of allowlists', () => {
  // Each entry as an admin might type it, whether the collector's schema takes it, and which of
  // the devices below it lets in under `block`.
  const devices = {
    sandisk: device({ port: '1-2' }),
    sandiskOther: device({ port: '1-3', serial: '4C530001230101109999' }),
    sandiskPadded: device({ port: '1-4', serial: '4C530001230101109473  ' }),
    noSerial: device({ port: '1-5', vendorId: '090c', productId: '1000', serial: '' }),
    pseudo: device({ port: '1-6', vendorId: '090c', productId: '1000', serial: '7&2A3B4C5D&0&1' }),
    keyboard: device({ port: '1-7', vendorId: '046d', productId: 'c31c', serial: '', classes: ['03'] }),
  };
  const allowed = (entries: unknown[]) =>
    Object.entries(devices)
      .filter(([, d]) => evaluateDevice(d, policy('block', entries), [], now).decision === 'allow' && removable(d))
      .map(([name]) => name);
  const removable = (d: UsbDevice) => d.interfaces.some(isRemovableMediaInterface);

  const good: [string, unknown[], string[]][] = [
    ['one serial', [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }], ['sandisk', 'sandiskPadded']],
    [
      'upper-case ids, normalized by the schema',
      [
        { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' },
        { vendorId: '090C', productId: '1000' },
      ],
      ['sandisk', 'sandiskPadded', 'noSerial', 'pseudo'],
    ],
    ['a whole model', [{ vendorId: '0781', productId: '5581' }], ['sandisk', 'sandiskOther', 'sandiskPadded']],
    ['a serial with spaces around it', [{ vendorId: '0781', productId: '5581', serial: ' 4C530001230101109473 ' }], ['sandisk', 'sandiskPadded']],
    ['a serial in the wrong case', [{ vendorId: '0781', productId: '5581', serial: '4c530001230101109473' }], []],
    ['a Windows pseudo-serial', [{ vendorId: '090c', productId: '1000', serial: '7&2A3B4C5D&0&1' }], []],
    ['another model’s serial', [{ vendorId: '090c', productId: '1000', serial: '4C530001230101109473' }], []],
    ['nothing', [], []],
  ];
  it.each(good)('%s', (_name, entries, expected) => {
    expect(allowed(entries)).toEqual(expected);
  });

  const bad: [string, unknown][] = [
    ['a vendor id that is not hex', { vendorId: 'SanD', productId: '5581' }],
    ['a three-digit product id', { vendorId: '0781', productId: '558' }],
    ['a 0x prefix', { vendorId: '0x0781', productId: '5581' }],
    ['an empty serial (meaning "any" must be written by leaving it out)', { vendorId: '0781', productId: '5581', serial: '' }],
    ['a blank serial', { vendorId: '0781', productId: '5581', serial: '   ' }],
    ['no product id', { vendorId: '0781' }],
    ['a serial that is a number', { vendorId: '0781', productId: '5581', serial: 4 }],
  ];
  it.each(bad)('refuses %s', (_name, entry) => {
    expect(PolicyInput.safeParse({ segment: 'mynumber', removableMedia: { mode: 'block', allow: [entry] } }).success).toBe(false);
  });

  it('never lets in a device without a real serial through a serial entry, even one built by hand past the schema', () => {
    for (const serial of ['', '7&2A3B4C5D&0&1']) {
      const d = device({ serial });
      expect(matchesAllowEntry(d, { vendorId: '0781', productId: '5581', serial })).toBe(false);
    }
    expect(evaluateDevice(device({ serial: '' }), policy('block'), [], now).flags).toEqual({ pseudoSerial: false, missingSerial: true });
  });

  it('never touches a keyboard, hub, card reader, audio, video, printer or network interface, whatever the list says', () => {
    for (const cls of ['03', '09', '0b', '01', '0e', '07', '02', '0a', 'e0', 'ef']) {
      for (const mode of ['block', 'readonly'] as const) {
        expect(evaluateDevice(device({ classes: [cls] }), policy(mode), [], now)).toMatchObject({ decision: 'allow', interfaces: [] });
      }
    }
  });
});
