import { XMLParser } from 'fast-xml-parser';
import type { UsbDevice } from '../../shared';
import type { CommandRunner } from '../logins/windows';
import type { Enforcer, EnforcerPass } from './types';

/**
 * macOS has no control that stops a USB disk before it mounts that an agent may use without a
 * system extension, so enforcement here is reactive: a blocked disk is unmounted and ejected
 * after it appears, and a read-only one is remounted read-only. The docs say so.
 */

interface SpUsbItem {
  _name?: string;
  vendor_id?: string;
  product_id?: string;
  serial_num?: string;
  manufacturer?: string;
  location_id?: string;
  Media?: { bsd_name?: string; _name?: string }[];
  _items?: SpUsbItem[];
}

/** USB devices from `system_profiler SPUSBDataType -json`; a device with media is storage (08). */
export function parseSystemProfilerUsb(json: string): UsbDevice[] {
  let doc: { SPUSBDataType?: SpUsbItem[] };
  try {
    doc = JSON.parse(json) as typeof doc;
  } catch {
    return [];
  }
  const out: UsbDevice[] = [];
  const hex = (v: string | undefined) => {
    const m = /0x([0-9a-f]{1,4})/i.exec(v ?? '');
    return m ? m[1]!.toLowerCase().padStart(4, '0') : '0000';
  };
  const walk = (items: SpUsbItem[] | undefined) => {
    for (const item of items ?? []) {
      if (item.vendor_id) {
        const disks = (item.Media ?? []).map((m) => m.bsd_name).filter((n): n is string => !!n);
        out.push({
          port: item.location_id ?? item._name ?? '',
          vendorId: hex(item.vendor_id),
          productId: hex(item.product_id),
          serial: item.serial_num ?? '',
          manufacturer: item.manufacturer ?? '',
          product: item._name ?? '',
          deviceClass: '00',
          interfaces: disks.map((d) => ({ name: d, interfaceClass: '08', interfaceSubClass: '06', interfaceProtocol: '50', description: '', authorized: null, driver: '' })),
          authorized: null,
          rootHub: false,
        });
      }
      walk(item._items);
    }
  };
  walk(doc.SPUSBDataType);
  return out;
}

const plist = new XMLParser({ preserveOrder: true, ignoreAttributes: true, parseTagValue: false });

type Node = Record<string, Node[] | string>;
const text = (n: Node[] | undefined) => (n?.[0]?.['#text'] as string | undefined) ?? '';

/** The whole-disk identifiers (`disk4`) that `diskutil list -plist external` lists. */
export function parseDiskutilExternal(xml: string): string[] {
  try {
    const doc = plist.parse(xml) as Node[];
    const root = doc.find((n) => 'plist' in n)?.plist as Node[] | undefined;
    const dict = root?.find((n) => 'dict' in n)?.dict as Node[] | undefined;
    if (!dict) return [];
    // A plist dict alternates <key> and its value, in order.
    for (let i = 0; i + 1 < dict.length; i++) {
      if (text(dict[i]!.key as Node[]) === 'WholeDisks') {
        const array = (dict[i + 1]!.array as Node[] | undefined) ?? [];
        return array.map((n) => text(n.string as Node[])).filter(Boolean);
      }
    }
    return [];
  } catch {
    return [];
  }
}

/** macOS: reactive unmount and eject, or a read-only remount, through diskutil. */
export function createMacEnforcer(opts: { runner: CommandRunner }): Enforcer {
  const run = opts.runner;
  return {
    async devices() {
      const { stdout, code } = await run('system_profiler', ['SPUSBDataType', '-json']);
      if (code !== 0) throw new Error(`system_profiler exited ${code}`);
      return parseSystemProfilerUsb(stdout);
    },
    async enforce(_mode, decisions) {
      const pass: EnforcerPass = { drift: [], failures: [], changed: false };
      const external = parseDiskutilExternal((await run('diskutil', ['list', '-plist', 'external'])).stdout);
      for (const { evaluation } of decisions) {
        for (const disk of evaluation.interfaces.filter((d) => external.includes(d))) {
          if (evaluation.decision === 'block') {
            pass.changed = true;
            const unmount = await run('diskutil', ['unmountDisk', 'force', `/dev/${disk}`]);
            const eject = await run('diskutil', ['eject', `/dev/${disk}`]);
            if (unmount.code !== 0 || eject.code !== 0) pass.failures.push(`could not eject ${disk}`);
          } else if (evaluation.decision === 'readonly') {
            const info = await run('diskutil', ['info', `/dev/${disk}s1`]);
            if (/Read-Only Volume:\s+No/i.test(info.stdout)) {
              pass.changed = true;
              await run('diskutil', ['unmountDisk', 'force', `/dev/${disk}`]);
              const mount = await run('diskutil', ['mount', 'readOnly', `/dev/${disk}s1`]);
              if (mount.code !== 0) pass.failures.push(`could not remount ${disk} read-only`);
            }
          }
        }
      }
      return pass;
    },
  };
}
