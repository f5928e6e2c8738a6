import si from 'systeminformation';
import { sanitizeText, type Disk, type InventorySnapshot, type LoggedInUser, type NetworkInterface, type UsbDevice } from '../../shared';

/** One probe per inventory section; each may fail on its own. */
export interface Probes {
  system(): Promise<InventorySnapshot['system']>;
  bios(): Promise<InventorySnapshot['bios']>;
  os(): Promise<InventorySnapshot['os']>;
  cpu(): Promise<InventorySnapshot['cpu']>;
  memory(): Promise<InventorySnapshot['memory']>;
  disks(): Promise<Disk[]>;
  network(): Promise<NetworkInterface[]>;
  users(): Promise<LoggedInUser[]>;
  /** USB devices where sysfs is not available (Windows, macOS). */
  usb(): Promise<UsbDevice[]>;
}

/** systeminformation returns loosely typed values; every field is coerced to what the schema wants. */
const str = (v: unknown): string => sanitizeText(v);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const hex4 = (v: unknown): string => {
  const n = typeof v === 'number' ? v : Number.parseInt(str(v).replace(/^0x/i, ''), 16);
  return Number.isInteger(n) && n >= 0 && n <= 0xffff ? n.toString(16).padStart(4, '0') : '0000';
};

/** The probes backed by systeminformation. */
export function createSystemProbes(): Probes {
  return {
    async system() {
      const s = await si.system();
      return { manufacturer: str(s.manufacturer), model: str(s.model), serial: str(s.serial), uuid: str(s.uuid) };
    },
    async bios() {
      const b = await si.bios();
      return { vendor: str(b.vendor), version: str(b.version), releaseDate: str(b.releaseDate) };
    },
    async os() {
      const o = await si.osInfo();
      return { platform: str(o.platform), distro: str(o.distro), release: str(o.release), kernel: str(o.kernel), arch: str(o.arch) };
    },
    async cpu() {
      const c = await si.cpu();
      // Current speed changes from second to second; only what identifies the CPU is kept.
      return { manufacturer: str(c.manufacturer), brand: str(c.brand), cores: num(c.cores), physicalCores: num(c.physicalCores) };
    },
    async memory() {
      const m = await si.mem();
      return { totalBytes: num(m.total) };
    },
    async disks() {
      const layout = await si.diskLayout();
      if (layout.length > 0) {
        return layout.map((d) => ({
          device: str(d.device),
          type: str(d.type),
          name: str(d.name),
          vendor: str(d.vendor),
          serial: str(d.serialNum),
          sizeBytes: num(d.size),
          interfaceType: str(d.interfaceType),
        }));
      }
      // Containers and some VMs report no layout; whole disks from the block device list instead.
      const blocks = await si.blockDevices();
      return blocks
        .filter((b) => b.type === 'disk')
        .map((b) => ({
          device: str(b.name),
          type: str(b.type),
          name: str(b.model || b.label),
          vendor: '',
          serial: str(b.serial),
          sizeBytes: num(b.size),
          interfaceType: str(b.protocol),
        }));
    },
    async network() {
      const list = await si.networkInterfaces();
      const items = Array.isArray(list) ? list : [list];
      return items.map((n) => ({
        iface: str(n.iface),
        mac: str(n.mac),
        ipv4: n.ip4 ? [str(n.ip4)] : [],
        ipv6: n.ip6 ? [str(n.ip6).replace(/%.*$/, '')] : [],
        internal: Boolean(n.internal),
        virtual: Boolean(n.virtual),
      }));
    },
    async users() {
      const list = await si.users();
      return list.map((u) => ({ user: str(u.user), tty: str(u.tty), host: str(u.ip), since: `${str(u.date)} ${str(u.time)}`.trim() }));
    },
    async usb() {
      const list = await si.usb();
      return list.map((u) => {
        // Windows ids are PnP instance ids (USB\\VID_0781&PID_5581\\serial); macOS gives ids apart.
        const ids = /VID_([0-9A-F]{4})&PID_([0-9A-F]{4})/i.exec(str(u.id));
        const loose = u as unknown as { vendorId?: unknown; productId?: unknown };
        return {
        port: str(u.id ?? `${u.bus}-${u.deviceId}`),
        vendorId: hex4(ids?.[1] ?? loose.vendorId),
        productId: hex4(ids?.[2] ?? loose.productId),
        serial: str(u.serialNumber),
        manufacturer: str(u.manufacturer || u.vendor),
        product: str(u.name),
        deviceClass: '00',
        interfaces: [],
        authorized: null,
        rootHub: /root hub/i.test(str(u.name)),
        };
      });
    },
  };
}
