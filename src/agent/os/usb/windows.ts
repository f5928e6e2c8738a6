import type { UsbDevice } from '../../../shared';
import type { CommandRunner } from '../command';
import type { UsbReader } from './types';

/** One device as `pnputil /enum-devices /connected` lists it. */
export interface PnpDevice {
  instanceId: string;
  description: string;
  className: string;
  classGuid: string;
  manufacturer: string;
  status: string;
  driver: string;
}

/** Parses `pnputil /enum-devices` output: blocks of `Field:   value` lines. */
export function parsePnputilDevices(output: string): PnpDevice[] {
  const devices: PnpDevice[] = [];
  let current: Partial<PnpDevice> | null = null;
  const fields: Record<string, keyof PnpDevice> = {
    'instance id': 'instanceId',
    'device description': 'description',
    'class name': 'className',
    'class guid': 'classGuid',
    'manufacturer name': 'manufacturer',
    status: 'status',
    'driver name': 'driver',
  };
  for (const line of output.split(/\r?\n/)) {
    const m = /^([A-Za-z ]+):\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const field = fields[m[1]!.trim().toLowerCase()];
    if (!field) continue;
    if (field === 'instanceId') {
      if (current?.instanceId) devices.push(complete(current));
      current = {};
    }
    if (current) current[field] = m[2]!.trim();
  }
  if (current?.instanceId) devices.push(complete(current));
  return devices;
}

function complete(d: Partial<PnpDevice>): PnpDevice {
  return { instanceId: d.instanceId ?? '', description: d.description ?? '', className: d.className ?? '', classGuid: d.classGuid ?? '', manufacturer: d.manufacturer ?? '', status: d.status ?? '', driver: d.driver ?? '' };
}

/** The USB interface class a PnP device stands for, from its class and description. */
function interfaceClassOf(d: PnpDevice): string {
  const cls = d.className.toLowerCase();
  if (cls === 'wpd') return '06';
  if (cls === 'cdrom' || cls === 'diskdrive' || /mass storage/i.test(d.description)) return '08';
  if (cls === 'keyboard' || cls === 'mouse' || cls === 'hidclass') return '03';
  if (cls === 'smartcardreader') return '0b';
  if (/hub/i.test(d.description)) return '09';
  return 'ff';
}

/** USB devices (instance ids `USB\VID_xxxx&PID_yyyy\serial`) from pnputil's list. */
export function pnpToUsbDevices(list: PnpDevice[]): UsbDevice[] {
  const out: UsbDevice[] = [];
  for (const d of list) {
    const m = /^USB\\VID_([0-9A-F]{4})&PID_([0-9A-F]{4})(?:&MI_[0-9A-F]{2})?\\(.+)$/i.exec(d.instanceId);
    if (!m) continue;
    out.push({
      port: d.instanceId,
      vendorId: m[1]!.toLowerCase(),
      productId: m[2]!.toLowerCase(),
      serial: m[3]!,
      manufacturer: d.manufacturer,
      product: d.description,
      deviceClass: '00',
      interfaces: [{ name: d.instanceId, interfaceClass: interfaceClassOf(d), interfaceSubClass: '00', interfaceProtocol: '00', description: d.description, authorized: d.status.toLowerCase() !== 'disabled', driver: d.driver }],
      authorized: d.status.toLowerCase() !== 'disabled',
      rootHub: /root hub/i.test(d.description),
    });
  }
  return out;
}

/**
 * Windows' USB reader: `pnputil /enum-devices /connected`, as the enforcer and the inventory both
 * see it. A device Device Manager (or Mamori) disabled reads `authorized: false`.
 */
export function createWindowsUsbReader(runner: CommandRunner): UsbReader {
  return {
    async devices() {
      const { stdout, code } = await runner('pnputil', ['/enum-devices', '/connected']);
      if (code !== 0) throw new Error(`pnputil /enum-devices exited ${code}`);
      return pnpToUsbDevices(parsePnputilDevices(stdout));
    },
  };
}
