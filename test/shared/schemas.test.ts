import { describe, expect, it } from 'vitest';
import {
  EVENT_TYPES,
  EventBatch,
  EventSchemaError,
  InventorySnapshot,
  IPC_METHODS,
  Policy,
  PolicyInput,
  diffInventory,
  inventoryHash,
  parseEventPayload,
  policySigningPayload,
  MAMORI_VERSION,
} from '../../src/shared';
import pkg from '../../package.json';

const device = { vendorId: '0781', productId: '5581', serial: 'S1', manufacturer: 'SanDisk', product: 'Ultra', deviceClass: '00', port: '1-2' };

describe('event schemas', () => {
  it('covers every event type of DESIGN.md', () => {
    const design = [
      'agent.started',
      'agent.stopped',
      'policy.applied',
      'policy.drift_corrected',
      'tamper.detected',
      'device.attached',
      'device.detached',
      'device.blocked',
      'device.allowed',
      'exception.requested',
      'exception.granted',
      'exception.expired',
      'login.success',
      'login.failure',
      'logout',
      'session.lock',
      'session.unlock',
      'incident.reported',
      'inventory.changed',
    ];
    for (const t of design) expect(EVENT_TYPES).toContain(t);
  });

  it('refuses an unknown type and an invalid payload with a message naming the field', () => {
    expect(() => parseEventPayload('device.exploded', {})).toThrow(EventSchemaError);
    expect(() => parseEventPayload('device.blocked', { ...device, vendorId: 'zz' })).toThrow(/vendorId/);
    expect(() => parseEventPayload('login.success', { user: 'a', source: 'telepathy' })).toThrow(/source/);
  });

  it('strips unknown payload fields and keeps hostile strings as data', () => {
    const hostile = '=HYPERLINK("http://evil")<script>\u0007';
    const parsed = parseEventPayload('device.attached', { ...device, product: hostile, extra: 1 }) as Record<string, unknown>;
    expect(parsed.product).toBe(hostile);
    expect(parsed).not.toHaveProperty('extra');
  });

  it('validates a sync batch', () => {
    expect(EventBatch.safeParse({ events: [] }).success).toBe(false);
    expect(
      EventBatch.safeParse({
        events: [{ seq: 1, at: '2026-11-22T09:00:00Z', type: 'agent.started', payload: {}, prevHash: '0'.repeat(64), hash: 'f'.repeat(64) }],
      }).success,
    ).toBe(true);
  });
});

describe('policy schema', () => {
  it('folds USB ids to lower case and fills defaults', () => {
    const p = PolicyInput.parse({ segment: 'mynumber', removableMedia: { mode: 'block', allow: [{ vendorId: '0781', productId: 'ABCD' }] } });
    expect(p.removableMedia.allow[0]!.productId).toBe('abcd');
    expect(p.syncIntervalSeconds).toBe(300);
  });

  it('refuses bad allowlists and unknown modes', () => {
    expect(PolicyInput.safeParse({ segment: 'mynumber', removableMedia: { mode: 'lock' } }).success).toBe(false);
    expect(PolicyInput.safeParse({ segment: 'mynumber', removableMedia: { mode: 'block', allow: [{ vendorId: '781', productId: '5581' }] } }).success).toBe(
      false,
    );
    expect(PolicyInput.safeParse({ segment: 'home', removableMedia: { mode: 'block' } }).success).toBe(false);
  });

  it('signs every field but the signature', () => {
    const doc = Policy.parse({
      segment: 'lgwan',
      version: 2,
      removableMedia: { mode: 'readonly', allow: [] },
      syncIntervalSeconds: 60,
      incidentContact: 'CSIRT',
      issuedAt: '2026-11-22T09:00:00Z',
      signature: 'abc',
    });
    expect(policySigningPayload(doc)).not.toContain('signature');
    expect(policySigningPayload(doc)).toContain('"version":2');
  });
});

describe('inventory snapshot', () => {
  const base = InventorySnapshot.parse({ collectedAt: '2026-11-22T09:00:00Z', agentVersion: '0.1.0', hostname: 'pc-001' });

  it('hashes the same whatever the time and the order of lists', () => {
    const a = {
      ...base,
      network: [
        { iface: 'a', mac: '', ipv4: ['10.0.0.2', '10.0.0.1'], ipv6: [], internal: false, virtual: false },
        { iface: 'b', mac: '', ipv4: [], ipv6: [], internal: false, virtual: false },
      ],
    };
    const b = { ...a, collectedAt: '2026-11-23T09:00:00Z', network: [a.network[1]!, { ...a.network[0]!, ipv4: ['10.0.0.1', '10.0.0.2'] }] };
    expect(inventoryHash(a)).toBe(inventoryHash(b));
  });

  it('reports an added USB stick', () => {
    const usb = [
      {
        port: '1-2',
        vendorId: '0781',
        productId: '5581',
        serial: 'S1',
        manufacturer: 'SanDisk',
        product: 'Ultra',
        deviceClass: '00',
        interfaces: [],
        authorized: true,
        rootHub: false,
      },
    ];
    const after = { ...base, usb };
    expect(inventoryHash(after)).not.toBe(inventoryHash(base));
    expect(diffInventory(base, after)).toEqual([{ section: 'usb', summary: 'added 0781:5581 S1 SanDisk Ultra' }]);
    expect(diffInventory(base, base)).toEqual([]);
  });
});

describe('IPC contract', () => {
  it('declares the methods of DESIGN.md', () => {
    expect(Object.keys(IPC_METHODS).sort()).toEqual(['recentEvents', 'redeemUnlockCode', 'reportIncident', 'requestException', 'sessionEvent', 'status']);
  });

  it('refuses unknown params instead of passing them on', () => {
    expect(IPC_METHODS.sessionEvent.params.safeParse({ kind: 'lock', mode: 'allow' }).success).toBe(false);
    expect(IPC_METHODS.reportIncident.params.safeParse({ category: 'malware', description: '  ' }).success).toBe(false);
  });
});

it('keeps the product version equal to package.json', () => {
  expect(MAMORI_VERSION).toBe(pkg.version);
});
