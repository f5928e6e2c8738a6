import { z } from 'zod';
import { canonicalJson } from './canonical-json';
import { sha256Hex } from './hash';
import { Timestamp, UntrustedText } from './common';
import { sanitizeText } from './text';
import { DEGRADED_REASONS, DegradedReason } from './ipc';

const text = UntrustedText.default('');
const optionalNumber = z.number().finite().nullable().default(null);

/** One interface of a USB device (a composite device has several). */
export const UsbInterface = z.object({
  /** Kernel name such as `1-2:1.0`, or the OS's own id. */
  name: text,
  /** Two lower-case hex digits: `08` mass storage, `03` HID, `06` still image (MTP/PTP), … */
  interfaceClass: z.string().regex(/^[0-9a-f]{2}$/),
  interfaceSubClass: z
    .string()
    .regex(/^[0-9a-f]{2}$/)
    .default('00'),
  interfaceProtocol: z
    .string()
    .regex(/^[0-9a-f]{2}$/)
    .default('00'),
  /** The interface string descriptor (e.g. `MTP`), untrusted. */
  description: text,
  /** Whether the kernel authorizes it (Linux); null where the OS has no such notion. */
  authorized: z.boolean().nullable().default(null),
  driver: text,
});
export type UsbInterface = z.infer<typeof UsbInterface>;

/** A USB device as the agent sees it. Every string in it is untrusted. */
export const UsbDevice = z.object({
  /** Where it is plugged: `1-2.3` on Linux, the location path or instance id elsewhere. */
  port: text,
  vendorId: z.string().regex(/^[0-9a-f]{4}$/),
  productId: z.string().regex(/^[0-9a-f]{4}$/),
  /** The serial as the device reports it; empty when it has none. */
  serial: text,
  manufacturer: text,
  product: text,
  /** bDeviceClass, two lower-case hex digits (`00`: see the interfaces). */
  deviceClass: z.string().regex(/^[0-9a-f]{2}$/),
  interfaces: z.array(UsbInterface).default([]),
  authorized: z.boolean().nullable().default(null),
  /** True for root hubs and other host-controller devices. */
  rootHub: z.boolean().default(false),
});
export type UsbDevice = z.infer<typeof UsbDevice>;

export const NetworkInterface = z.object({
  iface: text,
  mac: text,
  ipv4: z.array(z.string().max(64)).default([]),
  ipv6: z.array(z.string().max(64)).default([]),
  internal: z.boolean().default(false),
  virtual: z.boolean().default(false),
});
export type NetworkInterface = z.infer<typeof NetworkInterface>;

export const Disk = z.object({
  device: text,
  type: text,
  name: text,
  vendor: text,
  serial: text,
  sizeBytes: optionalNumber,
  interfaceType: text,
});
export type Disk = z.infer<typeof Disk>;

export const LoggedInUser = z.object({
  user: text,
  tty: text,
  host: text,
  since: text,
});
export type LoggedInUser = z.infer<typeof LoggedInUser>;

/** The sections of a snapshot, each collected by one probe that may fail on its own. */
export const INVENTORY_SECTIONS = ['system', 'bios', 'os', 'cpu', 'memory', 'disks', 'network', 'users', 'usb'] as const;
export type InventorySection = (typeof INVENTORY_SECTIONS)[number];

/** The device inventory of one terminal: its line in the 情報資産台帳. */
export const InventorySnapshot = z.object({
  collectedAt: Timestamp,
  agentVersion: text,
  hostname: text,
  system: z.object({ manufacturer: text, model: text, serial: text, uuid: text }).default({ manufacturer: '', model: '', serial: '', uuid: '' }),
  bios: z.object({ vendor: text, version: text, releaseDate: text }).default({ vendor: '', version: '', releaseDate: '' }),
  os: z
    .object({ platform: text, distro: text, release: text, kernel: text, arch: text })
    .default({ platform: '', distro: '', release: '', kernel: '', arch: '' }),
  cpu: z
    .object({ manufacturer: text, brand: text, cores: optionalNumber, physicalCores: optionalNumber })
    .default({ manufacturer: '', brand: '', cores: null, physicalCores: null }),
  memory: z.object({ totalBytes: optionalNumber }).default({ totalBytes: null }),
  disks: z.array(Disk).max(256).default([]),
  network: z.array(NetworkInterface).max(256).default([]),
  users: z.array(LoggedInUser).max(1024).default([]),
  usb: z.array(UsbDevice).max(1024).default([]),
  /** The agent's enforcement state when the snapshot was taken (`active`, `degraded`, `audit`, …). */
  enforcement: z.string().max(16).default(''),
  /** Why `enforcement` is `degraded` (empty otherwise), as the agent's status reports it. */
  enforcementReasons: z.array(DegradedReason).max(DEGRADED_REASONS.length).default([]),
  /** Probes that failed; their sections are empty. */
  warnings: z
    .array(z.object({ section: z.string().max(32), message: UntrustedText }))
    .max(64)
    .default([]),
});
export type InventorySnapshot = z.infer<typeof InventorySnapshot>;

/**
 * The stable hash of a snapshot: what it says about the terminal, not when it was taken.
 * `collectedAt` and the probe warnings are left out, and every list is sorted, so two snapshots of
 * an unchanged terminal hash the same whatever order the OS listed things in.
 */
export function inventoryHash(snapshot: InventorySnapshot): string {
  return sha256Hex(canonicalJson(stableInventory(snapshot)));
}

function sortBy<T>(items: readonly T[]): T[] {
  return items
    .map((item) => [canonicalJson(item), item] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, item]) => item);
}

/**
 * The snapshot without its time and warnings, with every list in a fixed order. Reasons for
 * degraded enforcement are left out while there are none, so a snapshot from before they were
 * reported hashes as it did.
 */
export function stableInventory(
  snapshot: InventorySnapshot,
): Omit<InventorySnapshot, 'collectedAt' | 'warnings' | 'enforcementReasons'> & { enforcementReasons?: DegradedReason[] } {
  const { collectedAt: _at, warnings: _warnings, enforcementReasons, ...rest } = snapshot;
  return {
    ...rest,
    ...(enforcementReasons?.length ? { enforcementReasons: [...enforcementReasons].sort() } : {}),
    disks: sortBy(rest.disks),
    network: sortBy(rest.network.map((n) => ({ ...n, ipv4: [...n.ipv4].sort(), ipv6: [...n.ipv6].sort() }))),
    users: sortBy(rest.users),
    usb: sortBy(rest.usb.map((d) => ({ ...d, interfaces: sortBy(d.interfaces) }))),
  };
}

/** One line of what changed between two snapshots, for `inventory.changed`. */
export interface InventoryChange {
  section: string;
  summary: string;
}

function describeUsb(d: UsbDevice): string {
  const name = [d.manufacturer, d.product].filter(Boolean).join(' ') || 'USB device';
  return `${d.vendorId}:${d.productId}${d.serial ? ` ${d.serial}` : ''} ${name}`.trim();
}

function diffKeyed<T>(section: string, before: readonly T[], after: readonly T[], key: (item: T) => string, describe: (item: T) => string): InventoryChange[] {
  const out: InventoryChange[] = [];
  const prev = new Map(before.map((i) => [key(i), i]));
  const next = new Map(after.map((i) => [key(i), i]));
  for (const [k, item] of next) {
    const old = prev.get(k);
    // A summary quotes untrusted descriptors: bounded and cut at a code point like them.
    if (!old) out.push({ section, summary: sanitizeText(`added ${describe(item)}`, 500) });
    else if (canonicalJson(old) !== canonicalJson(item)) {
      out.push({ section, summary: sanitizeText(`changed ${describe(item)}`, 500) });
    }
  }
  for (const [k, item] of prev) {
    if (!next.has(k)) out.push({ section, summary: sanitizeText(`removed ${describe(item)}`, 500) });
  }
  return out;
}

/**
 * What changed from `before` to `after`, section by section; empty when they hash the same.
 * `before` null means there was no earlier snapshot.
 */
export function diffInventory(before: InventorySnapshot | null, after: InventorySnapshot): InventoryChange[] {
  if (!before) return [{ section: 'all', summary: 'first inventory' }];
  const a = stableInventory(before);
  const b = stableInventory(after);
  const changes: InventoryChange[] = [];
  for (const section of ['hostname', 'agentVersion', 'enforcement', 'enforcementReasons', 'system', 'bios', 'os', 'cpu', 'memory'] as const) {
    const was = canonicalJson(a[section] ?? (section === 'enforcementReasons' ? [] : ''));
    const now = canonicalJson(b[section] ?? (section === 'enforcementReasons' ? [] : ''));
    if (was !== now) changes.push({ section, summary: sanitizeText(`${was} → ${now}`, 500) });
  }
  changes.push(
    ...diffKeyed(
      'disks',
      a.disks,
      b.disks,
      (d) => `${d.device}|${d.serial}`,
      (d) => `${d.device} ${d.name}`.trim(),
    ),
    ...diffKeyed(
      'network',
      a.network,
      b.network,
      (n) => n.iface,
      (n) => n.iface,
    ),
    ...diffKeyed(
      'users',
      a.users,
      b.users,
      (u) => `${u.user}|${u.tty}|${u.host}`,
      (u) => `${u.user} ${u.tty}`.trim(),
    ),
    ...diffKeyed('usb', a.usb, b.usb, (d) => `${d.port}|${d.vendorId}:${d.productId}|${d.serial}`, describeUsb),
  );
  return changes;
}
