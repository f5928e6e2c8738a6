import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createInventoryCollector } from '../../../src/agent/inventory';
import { createEnforcer } from '../../../src/agent/enforcement';
import { createUsbReader, readLinuxUsbDevices, usbDevicesDir } from '../../../src/agent/os/usb';
import { diffInventory, inventoryHash } from '../../../src/shared';
import { PRESETS, buildSysfs } from '../../fixtures/linux/sysfs';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-sysfs-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** Probes that answer at once, so the USB section is the only thing under test. */
const quiet = {
  system: async () => ({ manufacturer: 'FUJITSU', model: 'ESPRIMO D588', serial: 'YMAB012345', uuid: 'u' }),
  bios: async () => ({ vendor: 'FUJITSU', version: '1.0', releaseDate: '2024-01-01' }),
  os: async () => ({ platform: 'linux', distro: 'Debian', release: '12', kernel: '6.1.0', arch: 'x64' }),
  cpu: async () => ({ manufacturer: 'Intel', brand: 'Core i5-8500', cores: 6, physicalCores: 6 }),
  memory: async () => ({ totalBytes: 8 * 2 ** 30 }),
  disks: async () => [],
  network: async () => [{ iface: 'eth0', mac: '00:11:22:33:44:55', ipv4: ['10.0.0.5'], ipv6: [], internal: false, virtual: false }],
  users: async () => [],
};

describe('USB devices from sysfs', () => {
  it('reads devices with their serials and interfaces through the bus symlinks', () => {
    buildSysfs(root, [PRESETS.keyboard(), PRESETS.stickWithSerial(), PRESETS.stickWithoutSerial(), PRESETS.composite()]);
    expect(fs.lstatSync(path.join(usbDevicesDir(root), '1-2')).isSymbolicLink()).toBe(true);
    const devices = readLinuxUsbDevices(root);
    expect(devices.map((d) => d.port)).toEqual(['1-1', '1-2', '1-3', '1-4', 'usb1']);
    const stick = devices.find((d) => d.port === '1-2')!;
    expect(stick).toMatchObject({ vendorId: '0781', productId: '5581', serial: '4C530001230101109473', manufacturer: 'SanDisk', product: 'Ultra', authorized: true, rootHub: false });
    expect(stick.interfaces).toEqual([expect.objectContaining({ name: '1-2:1.0', interfaceClass: '08', driver: 'usb-storage', authorized: true })]);
    expect(devices.find((d) => d.port === '1-3')!.serial).toBe('');
    expect(devices.find((d) => d.port === '1-4')!.interfaces.map((i) => i.interfaceClass)).toEqual(['03', '08']);
    const hub = devices.find((d) => d.port === 'usb1')!;
    expect(hub.rootHub).toBe(true);
    expect(hub.interfaces.map((i) => i.name)).toEqual(['1-0:1.0']);
  });

  it('finds a device behind a hub, a phone in MTP mode and a smart-card reader', () => {
    buildSysfs(root, [PRESETS.hub('1-5'), { ...PRESETS.stickWithSerial('1-5.2'), serial: 'BEHINDHUB' }, PRESETS.phoneMtp(), PRESETS.smartCardReader()]);
    const devices = readLinuxUsbDevices(root);
    expect(devices.find((d) => d.port === '1-5.2')!.serial).toBe('BEHINDHUB');
    expect(devices.find((d) => d.port === '1-6')!.interfaces.map((i) => [i.interfaceClass, i.description])).toEqual([['06', 'MTP'], ['ff', 'MTP']]);
    expect(devices.find((d) => d.port === '1-7')!.interfaces[0]!.interfaceClass).toBe('0b');
  });

  it('keeps hostile descriptor strings as data', () => {
    const hostile = '=HYPERLINK("http://evil.example/","x")<script>alert(1)</script>\u0007\u001b[31m';
    buildSysfs(root, [{ ...PRESETS.stickWithSerial(), product: hostile, raw: { manufacturer: Buffer.from([0x41, 0xff, 0xfe, 0x42, 0x0a]) } }]);
    const stick = readLinuxUsbDevices(root).find((d) => d.port === '1-2')!;
    expect(stick.product).toBe(hostile);
    expect(stick.manufacturer).toBe('A\ufffd\ufffdB');
  });

  it('skips dangling links and garbage ids, and gives nothing for a missing tree', () => {
    buildSysfs(root, [PRESETS.stickWithSerial(), PRESETS.keyboard()]);
    fs.symlinkSync('../../../devices/gone', path.join(usbDevicesDir(root), '1-9'));
    fs.writeFileSync(path.join(fs.realpathSync(path.join(usbDevicesDir(root), '1-1')), 'idVendor'), 'zzzz\n');
    expect(readLinuxUsbDevices(root).map((d) => d.port)).toEqual(['1-2', 'usb1']);
    expect(readLinuxUsbDevices(path.join(root, 'nowhere'))).toEqual([]);
  });
});

describe('inventory snapshot', () => {
  it('hashes the same twice, and differently once a stick is plugged in', async () => {
    buildSysfs(root, [PRESETS.keyboard()]);
    const collector = createInventoryCollector({ systemRoot: root, platform: 'linux', probes: quiet });
    const first = await collector.collect();
    const second = await collector.collect();
    expect(inventoryHash(second)).toBe(inventoryHash(first));
    buildSysfs(root, [PRESETS.stickWithSerial()]);
    const third = await collector.collect();
    expect(inventoryHash(third)).not.toBe(inventoryHash(first));
    expect(diffInventory(first, third)).toEqual([{ section: 'usb', summary: 'added 0781:5581 4C530001230101109473 SanDisk Ultra' }]);
  });

  it('leaves a failing probe’s section empty with a warning, and does not throw', async () => {
    const warnings: string[] = [];
    const collector = createInventoryCollector({
      systemRoot: root,
      platform: 'linux',
      probes: { ...quiet, network: async () => { throw new Error('netlink refused'); }, cpu: () => new Promise(() => undefined) },
      probeTimeoutMs: 50,
      logger: { warn: (_o: object, msg: string) => void warnings.push(msg) } as never,
    });
    const snapshot = await collector.collect();
    expect(snapshot.network).toEqual([]);
    expect(snapshot.cpu.brand).toBe('');
    expect(snapshot.warnings.map((w) => w.section).sort()).toEqual(['cpu', 'network']);
    expect(warnings).toHaveLength(2);
    expect(snapshot.system.model).toBe('ESPRIMO D588');
  });

  it('drops a section whose probe returns nonsense instead of the whole snapshot', async () => {
    const collector = createInventoryCollector({ systemRoot: root, platform: 'linux', probes: { ...quiet, disks: async () => 'garbage' as never } });
    const snapshot = await collector.collect();
    expect(snapshot.disks).toEqual([]);
    expect(snapshot.warnings).toEqual([{ section: 'disks', message: expect.stringContaining('schema') }]);
  });

  it("collects this machine's hostname and network interfaces", async () => {
    const snapshot = await createInventoryCollector({ systemRoot: root }).collect();
    expect(snapshot.hostname).toBe(os.hostname());
    expect(snapshot.network.length).toBeGreaterThan(0);
    expect(snapshot.os.platform).toBe(process.platform);
  });

  // Inventory used to read Windows and macOS devices through systeminformation while enforcement
  // read pnputil and system_profiler: the ledger showed other ports and no interfaces, so the
  // device an admin saw in the ledger was not the one a decision named.
  it.each([
    ['win32', 'pnputil', '../../fixtures/windows/enforcement/pnputil-enum-connected.txt'],
    ['darwin', 'system_profiler', '../../fixtures/macos/enforcement/spusb.json'],
  ] as const)('lists the USB devices of a %s terminal exactly as enforcement sees them', async (platform, tool, fixture) => {
    const output = fs.readFileSync(path.resolve(__dirname, fixture), 'utf8');
    const calls: string[] = [];
    const runner = async (cmd: string) => {
      calls.push(cmd);
      return cmd === tool ? { stdout: output, code: 0 } : { stdout: '', code: 1 };
    };
    const usb = createUsbReader({ platform, systemRoot: root, runner });
    const snapshot = await createInventoryCollector({ systemRoot: root, platform, probes: quiet, usb }).collect();
    const seen = await createEnforcer({ platform, systemRoot: root, runner, usb }).devices();
    expect(seen.length).toBeGreaterThan(0);
    expect(snapshot.usb).toEqual(seen);
    expect(calls.every((c) => c === tool)).toBe(true);
  });
});
