import { XMLParser } from 'fast-xml-parser';
import type { CommandRunner } from '../os/command';
import { createMacUsbReader, type UsbReader } from '../os/usb';
import type { Enforcer, EnforcerPass } from './types';

/**
 * macOS has no control that stops a USB disk before it mounts that an agent may use without a
 * system extension, so enforcement here is reactive: a blocked disk is unmounted and ejected
 * after it appears, and a read-only one is remounted read-only. The docs say so.
 */

const xml = new XMLParser({ preserveOrder: true, ignoreAttributes: true, parseTagValue: false, trimValues: true });

type XmlNode = Record<string, XmlNode[] | string>;

function plistValue(node: XmlNode): unknown {
  const tag = Object.keys(node).find((k) => k !== ':@');
  if (!tag) return null;
  const children = node[tag];
  const text = Array.isArray(children) ? ((children[0]?.['#text'] as string | undefined) ?? '') : '';
  switch (tag) {
    case 'dict': {
      const out: Record<string, unknown> = {};
      const items = (children as XmlNode[]).filter((n) => !('#text' in n));
      // A plist dict alternates <key> and its value, in order.
      for (let i = 0; i + 1 < items.length; i += 2) {
        const key = plistValue(items[i]!);
        if (typeof key === 'string') out[key] = plistValue(items[i + 1]!);
      }
      return out;
    }
    case 'array':
      return (children as XmlNode[]).filter((n) => !('#text' in n)).map(plistValue);
    case 'integer':
    case 'real':
      return Number(text);
    case 'true':
      return true;
    case 'false':
      return false;
    case 'key':
    case 'string':
    case 'date':
    case 'data':
      return text;
    default:
      return null;
  }
}

/** An Apple property list (XML) as plain values; null when it is not one. */
export function parsePlist(text: string): unknown {
  try {
    const doc = xml.parse(text) as XmlNode[];
    const root = doc.find((n) => 'plist' in n)?.plist;
    const top = Array.isArray(root) ? root.find((n) => !('#text' in n)) : undefined;
    return top ? plistValue(top) : null;
  } catch {
    return null;
  }
}

/** An external disk and the volumes on it, from `diskutil list -plist external`. */
export interface ExternalDisk {
  /** `disk4` */
  disk: string;
  /** Its partitions (`disk4s1`), with where each is mounted ('' when it is not). */
  volumes: { id: string; mountPoint: string }[];
}

/** The external whole disks and their volumes that `diskutil list -plist external` lists. */
export function parseDiskutilList(text: string): ExternalDisk[] {
  const doc = parsePlist(text) as { AllDisksAndPartitions?: { DeviceIdentifier?: string; MountPoint?: string; Partitions?: { DeviceIdentifier?: string; MountPoint?: string }[]; APFSVolumes?: { DeviceIdentifier?: string; MountPoint?: string }[] }[] } | null;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return (doc?.AllDisksAndPartitions ?? [])
    .filter((d) => str(d.DeviceIdentifier))
    .map((d) => ({
      disk: str(d.DeviceIdentifier),
      volumes: [
        // A disk without a partition table is itself the volume.
        ...(d.MountPoint !== undefined ? [{ id: str(d.DeviceIdentifier), mountPoint: str(d.MountPoint) }] : []),
        ...[...(d.Partitions ?? []), ...(d.APFSVolumes ?? [])].filter((p) => str(p.DeviceIdentifier)).map((p) => ({ id: str(p.DeviceIdentifier), mountPoint: str(p.MountPoint) })),
      ],
    }));
}

/** The whole-disk identifiers (`disk4`) that `diskutil list -plist external` lists. */
export function parseDiskutilExternal(text: string): string[] {
  return parseDiskutilList(text).map((d) => d.disk);
}

/** Whether `diskutil info -plist VOLUME` says the mounted volume can be written; null if unknown. */
export function parseDiskutilWritable(text: string): boolean | null {
  const info = parsePlist(text) as { WritableVolume?: unknown } | null;
  return typeof info?.WritableVolume === 'boolean' ? info.WritableVolume : null;
}

/**
 * macOS: reactive unmount and eject (`block`), or a read-only remount (`readonly`), through
 * diskutil. Reactive means a disk is usable from the moment it mounts until the pass its hint
 * triggers, typically well under a second; docs/design.md#macos-enforcement states this as weaker than Linux and Windows.
 */
export function createMacEnforcer(opts: { runner: CommandRunner; usb?: UsbReader }): Enforcer {
  const run = opts.runner;
  const usb = opts.usb ?? createMacUsbReader(run);
  /** Volumes Mamori remounted read-only, so a read-write remount by hand is reported as drift. */
  const madeReadOnly = new Set<string>();
  const list = async () => parseDiskutilList((await run('diskutil', ['list', '-plist', 'external'])).stdout);
  return {
    devices: () => usb.devices(),
    async enforce(_mode, decisions) {
      const pass: EnforcerPass = { drift: [], failures: [], changed: false };
      const external = await list();
      const ejected: string[] = [];
      for (const { device, evaluation } of decisions) {
        for (const disk of external.filter((d) => evaluation.interfaces.includes(d.disk))) {
          if (evaluation.decision === 'block') {
            pass.changed = true;
            ejected.push(disk.disk);
            await run('diskutil', ['unmountDisk', 'force', `/dev/${disk.disk}`]);
            const eject = await run('diskutil', ['eject', `/dev/${disk.disk}`]);
            if (eject.code !== 0) pass.failures.push(`diskutil eject ${disk.disk} exited ${eject.code}`);
          } else if (evaluation.decision === 'readonly') {
            for (const volume of disk.volumes.filter((v) => v.mountPoint)) {
              const writable = parseDiskutilWritable((await run('diskutil', ['info', '-plist', volume.id])).stdout);
              if (writable === false) continue;
              if (madeReadOnly.has(volume.id)) pass.drift.push({ control: `${volume.id} read-only`, expected: 'read-only', found: 'writable', device });
              pass.changed = true;
              await run('diskutil', ['unmount', 'force', volume.id]);
              const mount = await run('diskutil', ['mount', 'readOnly', volume.id]);
              const after = parseDiskutilWritable((await run('diskutil', ['info', '-plist', volume.id])).stdout);
              if (mount.code !== 0 || after !== false) pass.failures.push(`could not remount ${volume.id} read-only`);
              else madeReadOnly.add(volume.id);
            }
          }
        }
      }
      if (ejected.length > 0) {
        // Read back: an ejected disk leaves the list (a busy one refuses and stays).
        const still = (await list()).map((d) => d.disk);
        for (const disk of ejected) if (still.includes(disk)) pass.failures.push(`${disk} is still attached after diskutil eject`);
      }
      return pass;
    },
  };
}
