import type { UsbDevice } from '../../../shared';
import type { CommandRunner } from '../command';
import type { UsbReader } from './types';

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

/** macOS' USB reader: `system_profiler SPUSBDataType -json`, for the enforcer and the inventory. */
export function createMacUsbReader(runner: CommandRunner): UsbReader {
  return {
    async devices() {
      const { stdout, code } = await runner('system_profiler', ['SPUSBDataType', '-json']);
      if (code !== 0) throw new Error(`system_profiler exited ${code}`);
      return parseSystemProfilerUsb(stdout);
    },
  };
}
