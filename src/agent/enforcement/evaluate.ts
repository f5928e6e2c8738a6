import type { AllowEntry, Policy, UsbDevice, UsbInterface } from '../../shared';
// The shared module's own file, not its index: evaluation runs before the schemas load (docs/design.md#agent-cycle).
import { isExactScope } from '../../shared/unlock';
import type { ActiveException } from './types';

/** The part of an exception that evaluation reads. */
export type ExceptionGrant = Pick<ActiveException, 'device' | 'expiresAt'>;

/** What the policy wants done with a device's removable-media interfaces. */
export type Decision = 'allow' | 'block' | 'readonly' | 'audit';

/** The outcome of evaluating one device: what to do, why, and to which interfaces. */
export interface Evaluation {
  decision: Decision;
  /** Why, in words an auditor reads in the event log (`allowlist: 総務課 配布用`, …). */
  reason: string;
  /** The removable-media interfaces the decision applies to; empty for every other device. */
  interfaces: string[];
  /** The serial cannot identify the device: Windows made one up (`&`), or there is none. */
  flags: { pseudoSerial: boolean; missingSerial: boolean };
}

/**
 * Removable media as docs/design.md#what-counts-as-removable-media defines it: mass storage (class 08), still image / MTP / PTP
 * (class 06), and a vendor-specific interface (ff) that names itself MTP ("MTP", as Android's
 * gadget driver does, or "Media Transfer Protocol").
 * Keyboards and mice (03), hubs (09), smart-card readers (0b), audio, video, printers and network
 * adapters are never removable media.
 */
export function isRemovableMediaInterface(iface: Pick<UsbInterface, 'interfaceClass' | 'description'>): boolean {
  if (iface.interfaceClass === '08' || iface.interfaceClass === '06') return true;
  return iface.interfaceClass === 'ff' && /\bMTP\b|\bmedia transfer\b/i.test(iface.description);
}

/** The removable-media interfaces of a device. Root hubs have none. */
export function removableInterfaces(device: UsbDevice): UsbInterface[] {
  if (device.rootHub) return [];
  return device.interfaces.filter(isRemovableMediaInterface);
}

/** Windows invents serials containing `&` for devices that report none: not a real serial. */
export function isPseudoSerial(serial: string): boolean {
  return serial.includes('&');
}

function serialUsable(serial: string): boolean {
  return serial.trim() !== '' && !isPseudoSerial(serial);
}

/** An allowlist entry matches vendor and product id, and the serial exactly when it names one. */
export function matchesAllowEntry(device: UsbDevice, entry: AllowEntry): boolean {
  // Ids are hex: the policy schema lower-cases them, but a local list may not have passed it.
  if (entry.vendorId.toLowerCase() !== device.vendorId || entry.productId.toLowerCase() !== device.productId) return false;
  if (entry.serial === undefined) return true;
  // The schema trims an entry's serial, so the device's is compared trimmed too (some firmware
  // pads it with spaces); otherwise exactly, case included.
  return serialUsable(entry.serial) && serialUsable(device.serial) && device.serial.trim() === entry.serial;
}

/**
 * An exception matches one exact device: vendor and product id, and the serial exactly (a real
 * serial, compared trimmed), or for a device without one the port it was requested on. An
 * exception naming less (a vendor alone, ids without serial or port, from an older store) matches
 * nothing, so it cannot follow another stick of the same vendor or model.
 */
export function matchesException(device: UsbDevice, exception: ExceptionGrant, now: Date): boolean {
  if (Date.parse(exception.expiresAt) <= now.getTime()) return false;
  const want = exception.device;
  if (!isExactScope(want)) return false;
  if (want.vendorId !== device.vendorId || want.productId !== device.productId) return false;
  if (want.serial !== undefined) return serialUsable(device.serial) && device.serial.trim() === want.serial;
  return !serialUsable(device.serial) && want.port === device.port;
}

/** Decides what to do with one device under a policy and the exceptions in force. Pure. */
export function evaluateDevice(device: UsbDevice, policy: Policy, exceptions: readonly ExceptionGrant[], now: Date): Evaluation {
  const interfaces = removableInterfaces(device).map((i) => i.name);
  const flags = { pseudoSerial: isPseudoSerial(device.serial), missingSerial: device.serial.trim() === '' };
  if (interfaces.length === 0) return { decision: 'allow', reason: 'not removable media', interfaces, flags };
  const mode = policy.removableMedia.mode;
  if (mode === 'allow') return { decision: 'allow', reason: 'policy allows removable media', interfaces, flags };
  if (mode === 'audit') return { decision: 'audit', reason: 'policy records only', interfaces, flags };
  const entry = policy.removableMedia.allow.find((e) => matchesAllowEntry(device, e));
  if (entry) return { decision: 'allow', reason: entry.note ? `allowlist: ${entry.note}` : 'allowlist', interfaces, flags };
  const exception = exceptions.find((e) => matchesException(device, e, now));
  if (exception) return { decision: 'allow', reason: `temporary exception until ${exception.expiresAt}`, interfaces, flags };
  if (mode === 'readonly') {
    // Only a block device can be made read-only; a phone or camera over MTP/PTP cannot, so it is
    // blocked rather than left writable.
    const storageOnly = removableInterfaces(device).every((i) => i.interfaceClass === '08');
    if (!storageOnly) return { decision: 'block', reason: 'policy allows reading only; MTP/PTP devices cannot be made read-only', interfaces, flags };
    return { decision: 'readonly', reason: 'policy allows reading only', interfaces, flags };
  }
  return { decision: 'block', reason: 'policy blocks removable media', interfaces, flags };
}
