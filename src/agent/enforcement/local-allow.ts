import type { AllowEntry, Policy } from '../../shared';
import type { EventStore } from '../store';
import { removableInterfaces } from './evaluate';
import { devicePayload } from './device-payload';
import type { Enforcer } from './types';
import { STATE_KEYS } from '../state-keys';


/** The terminal's own allowlist: storage present at enrollment with `--allow-present`. */
export function loadLocalAllow(store: EventStore): AllowEntry[] {
  return JSON.parse(store.getState(STATE_KEYS.localAllow) ?? '[]') as AllowEntry[];
}

/** The policy with this terminal's own allowlist entries added. */
export function withLocalAllow(policy: Policy | null, local: AllowEntry[]): Policy | null {
  if (!policy || local.length === 0) return policy;
  return { ...policy, removableMedia: { ...policy.removableMedia, allow: [...policy.removableMedia.allow, ...local] } };
}

/**
 * Lockout safety at enrollment: the removable media plugged in now (the disk the terminal may be
 * running from, a stick IT is installing from) are allowed by serial, or by model when they have
 * no serial, and each is recorded as `device.allowed`.
 */
export async function allowPresentDevices(store: EventStore, enforcer: Enforcer): Promise<AllowEntry[]> {
  const devices = (await enforcer.devices()).filter((d) => removableInterfaces(d).length > 0);
  const local = loadLocalAllow(store);
  store.transaction(() => {
    for (const d of devices) {
      const entry: AllowEntry = { vendorId: d.vendorId, productId: d.productId, ...(d.serial.trim() && !d.serial.includes('&') ? { serial: d.serial } : {}), note: 'present at enrollment (--allow-present)' };
      if (local.some((e) => e.vendorId === entry.vendorId && e.productId === entry.productId && e.serial === entry.serial)) continue;
      local.push(entry);
      store.append({ type: 'device.allowed', payload: { ...devicePayload(d), reason: entry.note, interfaces: removableInterfaces(d).map((i) => i.name) } });
    }
    store.setState(STATE_KEYS.localAllow, JSON.stringify(local));
  });
  return local;
}
