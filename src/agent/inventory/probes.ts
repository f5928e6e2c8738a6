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
  /** USB devices, read by the OS layer's reader that enforcement uses too (src/agent/os/usb). */
  usb(): Promise<UsbDevice[]>;
}

/** systeminformation returns loosely typed values; every field is coerced to what the schema wants. */
const str = (v: unknown): string => sanitizeText(v);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The probes backed by systeminformation; USB comes from the OS layer's reader instead. */
export function createSystemProbes(): Omit<Probes, 'usb'> {
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
  };
}
