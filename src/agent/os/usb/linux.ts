import fs from 'node:fs';
import path from 'node:path';
// The shared module's own file, not its index: this runs before the schemas load (docs/design.md#agent-cycle).
import type { UsbDevice, UsbInterface } from '../../../shared';
import { sanitizeText } from '../../../shared/text';
import type { UsbReader } from './types';

/** `<systemRoot>/sys/bus/usb/devices`: one symlink per device and per interface. */
export function usbDevicesDir(systemRoot: string): string {
  return path.join(systemRoot, 'sys', 'bus', 'usb', 'devices');
}

/** Reads a sysfs attribute: its text without the trailing newline, '' when absent or unreadable. */
export function readAttr(dir: string, name: string): string {
  try {
    const buf = fs.readFileSync(path.join(dir, name));
    // Descriptor strings are untrusted bytes; invalid UTF-8 becomes U+FFFD rather than an error,
    // and a long one is cut at a code point, never inside a surrogate pair.
    return sanitizeText(buf.toString('utf8').replace(/\n$/, ''));
  } catch {
    return '';
  }
}

function hex(value: string, digits: number): string | null {
  const v = value.trim().toLowerCase();
  return new RegExp(`^[0-9a-f]{${digits}}$`).test(v) ? v : null;
}

function authorized(dir: string): boolean | null {
  const v = readAttr(dir, 'authorized').trim();
  return v === '1' ? true : v === '0' ? false : null;
}

function driverOf(dir: string): string {
  try {
    return path.basename(fs.readlinkSync(path.join(dir, 'driver')));
  } catch {
    return '';
  }
}

/** Kernel names: devices are `usbN` (root hubs) or `B-P[.P…]`; interfaces add `:C.I`. */
const DEVICE_NAME = /^(usb\d+|\d+-\d+(\.\d+)*)$/;
const INTERFACE_NAME = /^(\d+-\d+(\.\d+)*|usb\d+):\d+\.\d+$/;

function readInterface(name: string, dir: string): UsbInterface | null {
  const cls = hex(readAttr(dir, 'bInterfaceClass'), 2);
  if (!cls) return null;
  return {
    name,
    interfaceClass: cls,
    interfaceSubClass: hex(readAttr(dir, 'bInterfaceSubClass'), 2) ?? '00',
    interfaceProtocol: hex(readAttr(dir, 'bInterfaceProtocol'), 2) ?? '00',
    description: readAttr(dir, 'interface'),
    authorized: authorized(dir),
    driver: driverOf(dir),
  };
}

function readDevice(name: string, dir: string): UsbDevice | null {
  const vendorId = hex(readAttr(dir, 'idVendor'), 4);
  const productId = hex(readAttr(dir, 'idProduct'), 4);
  if (!vendorId || !productId) return null;
  return {
    port: name,
    vendorId,
    productId,
    serial: readAttr(dir, 'serial'),
    manufacturer: readAttr(dir, 'manufacturer'),
    product: readAttr(dir, 'product'),
    deviceClass: hex(readAttr(dir, 'bDeviceClass'), 2) ?? '00',
    interfaces: [],
    authorized: authorized(dir),
    rootHub: name.startsWith('usb'),
  };
}

/** The real directory behind a `bus/usb/devices` entry, or null for a dangling link. */
export function resolveEntry(systemRoot: string, name: string): string | null {
  try {
    return fs.realpathSync(path.join(usbDevicesDir(systemRoot), name));
  } catch {
    return null;
  }
}

/**
 * Every USB device under `<systemRoot>/sys/bus/usb/devices`, with its interfaces, sorted by port.
 * A missing tree gives []; an entry that cannot be read (dangling link, garbage ids) is skipped.
 */
export function readLinuxUsbDevices(systemRoot: string): UsbDevice[] {
  let names: string[];
  try {
    names = fs.readdirSync(usbDevicesDir(systemRoot));
  } catch {
    return [];
  }
  const devices = new Map<string, UsbDevice>();
  for (const name of names.filter((n) => DEVICE_NAME.test(n))) {
    const dir = resolveEntry(systemRoot, name);
    const device = dir ? readDevice(name, dir) : null;
    if (device) devices.set(name, device);
  }
  for (const name of names.filter((n) => INTERFACE_NAME.test(n))) {
    // A root hub's own interface is named after bus and port 0 (`1-0:1.0` belongs to `usb1`).
    const prefix = name.slice(0, name.indexOf(':'));
    const owner = devices.get(prefix.replace(/^(\d+)-0$/, 'usb$1'));
    const dir = owner ? resolveEntry(systemRoot, name) : null;
    const iface = dir ? readInterface(name, dir) : null;
    if (owner && iface) owner.interfaces.push(iface);
  }
  for (const d of devices.values()) d.interfaces.sort((a, b) => (a.name < b.name ? -1 : 1));
  return [...devices.values()].sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : 0));
}

/** Linux's USB reader: sysfs under `systemRoot`, for the enforcer and the inventory. */
export function createLinuxUsbReader(systemRoot: string): UsbReader {
  return {
    async devices() {
      return readLinuxUsbDevices(systemRoot);
    },
  };
}
