import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The Linux USB enforcer against a real kernel: a Debian 6.1 kernel under QEMU (TCG), with a
// USB stick, an MTP device, a smart-card reader, a keyboard and a serial adapter hot-plugged into
// its xHCI controller over QMP. The guest runs the real enforcer and reconciler (guest-agent.js)
// on the host's Node and dist/, shared read-only over 9p. See README.md in this folder.

const HERE = __dirname;
const ROOT = path.resolve(HERE, '..', '..', '..');
const SKIP = process.env.MAMORI_SKIP_QEMU === '1';

// What QEMU's devices report (checked against the guest's sysfs in the first test).
const STICK = { vendorId: '46f4', productId: '0001', serial: 'ABC123' };
const MTP = { vendorId: '46f4', productId: '0004' };
const CCID = { vendorId: '08e6', productId: '4433' };
const KBD = { vendorId: '0627', productId: '0001' };
/** QEMU's usb-serial is an FTDI adapter: one vendor-specific (ff) interface that is not MTP. */
const SERIAL = { vendorId: '0403', productId: '6001' };

interface Iface {
  name: string;
  port: string;
  vendorId: string;
  productId: string;
  serial: string | null;
  interfaceClass: string;
  description: string | null;
  authorized: string | null;
  driver: string;
}
interface Uevent {
  at: number;
  action: string;
  devpath: string;
  name: string;
}
interface Snapshot {
  rootHubs: { name: string; interfaceAuthorizedDefault: string | null }[];
  interfaces: Iface[];
  blocks: { name: string; usbInterface: string | null; ro: string | null }[];
  uevents: Uevent[];
  events: { seq: number; type: string; payload: Record<string, unknown> }[];
  rules: string | null;
  warnings: string[];
}

function policy(mode: 'block' | 'readonly' | 'audit' | 'allow', allow: { vendorId: string; productId: string; serial?: string }[], version: number) {
  return {
    segment: 'mynumber',
    version,
    issuedAt: '2026-11-24T00:00:00.000Z',
    signature: 'x',
    syncIntervalSeconds: 300,
    incidentContact: '',
    removableMedia: { mode, allow },
  };
}

/** Strips terminal escapes and carriage returns from what the serial console printed. */
function clean(line: string): string {
  return line.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc|\r/g, '');
}

/** QEMU with the guest agent on its serial console (QEMU's stdin/stdout). */
class Guest {
  readonly transcript: string[] = [];
  private readonly child: ChildProcess;
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readyWaiter: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk.toString('utf8')));
    this.child.stderr!.on('data', (chunk: Buffer) => this.transcript.push(`[qemu stderr] ${chunk.toString('utf8').trim()}`));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        this.fail(new Error(`QEMU exited (${code})`));
        resolve(code);
      });
      this.child.on('error', (err) => {
        this.fail(new Error(`cannot start qemu-system-x86_64: ${err.message}`));
        resolve(null);
      });
    });
  }

  /** The last console lines, for failure messages. */
  tail(n = 40): string {
    return this.transcript
      .slice(-n)
      .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
      .join('\n');
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = new Error(`${err.message}\n--- guest console (last lines) ---\n${this.tail()}`);
    this.readyWaiter?.reject(this.failure);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
    this.pending.clear();
  }

  private onData(text: string): void {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = clean(this.buffer.slice(0, nl));
      this.buffer = this.buffer.slice(nl + 1);
      this.transcript.push(line);
      const at = line.indexOf('@@MAMORI ');
      if (at < 0) continue;
      const m = /^@@MAMORI (\w+) (.*)$/.exec(line.slice(at));
      if (!m) continue;
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(m[2]!) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (m[1] === 'READY') this.readyWaiter?.resolve(value);
      else if (m[1] === 'FATAL') this.fail(new Error(`guest failed: ${JSON.stringify(value)}`));
      else if (m[1] === 'REPLY') {
        const p = this.pending.get(value.id as number);
        if (!p) continue;
        this.pending.delete(value.id as number);
        clearTimeout(p.timer);
        if (value.ok) p.resolve(value.result);
        else p.reject(new Error(`guest command failed: ${String(value.error)}`));
      }
    }
  }

  ready(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const timer = setTimeout(() => reject(new Error(`the guest was not ready within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
      this.readyWaiter = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  call<T = unknown>(name: string, arg?: unknown, timeoutMs = 60_000): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`guest command ${name} got no reply within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.stdin!.write(`${id} ${name}${arg === undefined ? '' : ` ${JSON.stringify(arg)}`}\n`);
    });
  }

  snapshot(): Promise<Snapshot> {
    return this.call<Snapshot>('snapshot');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.call('quit', undefined, 5000).catch(() => undefined);
    const done = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    if (!done) this.child.kill('SIGKILL');
  }
}

/** A QMP client: one command at a time, events ignored. */
class Qmp {
  private socket: net.Socket | null = null;
  private buffer = '';
  private waiter: ((msg: Record<string, unknown>) => void) | null = null;

  async connect(file: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(file, () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cannot connect to QMP at ${file}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        this.waiter?.(msg);
      }
    });
    // QEMU gone: whatever waits for a reply gets an error instead of a test timeout.
    this.socket.on('close', () => this.waiter?.({ error: { desc: 'QMP connection closed (QEMU exited?)' } }));
    await this.next(); // greeting
    await this.execute('qmp_capabilities');
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.waiter = (msg) => {
        this.waiter = null;
        resolve(msg);
      };
    });
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.socket!.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
    const msg = await reply;
    if ('error' in msg) throw new Error(`QMP ${command} failed: ${JSON.stringify(msg.error)}`);
    return msg.return;
  }

  close(): void {
    this.socket?.destroy();
  }
}

function runPrepare(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [path.join(HERE, 'prepare.sh')], { encoding: 'utf8', timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(
          new Error(
            `test/e2e/qemu/prepare.sh failed, so the real-kernel USB test cannot run (set MAMORI_SKIP_QEMU=1 to skip it on a machine without QEMU/root/apt):\n${stderr.trim() || err.message}`,
          ),
        );
        return;
      }
      resolve(stdout.trim().split('\n').pop()!);
    });
  });
}

const find = (s: Snapshot, d: { vendorId: string; productId: string }) => s.interfaces.filter((i) => i.vendorId === d.vendorId && i.productId === d.productId);
const sdEvents = (s: Snapshot, from = 0) => s.uevents.slice(from).filter((e) => /^sd[a-z]+$/.test(e.name));
const eventsOf = (s: Snapshot, type: string) => s.events.filter((e) => e.type === type);

const title = SKIP ? 'Linux USB enforcement on a real kernel under QEMU (skipped: MAMORI_SKIP_QEMU=1)' : 'Linux USB enforcement on a real kernel under QEMU';

describe.skipIf(SKIP)(title, () => {
  let guest: Guest | null = null;
  const qmp = new Qmp();
  let work = '';
  let stickIface = '';
  let stickDisk = '';
  const timings: Record<string, number> = {};
  const started = Date.now();

  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'agent', 'enforcement', 'index.js'))) {
      throw new Error('dist/ is missing: run `npm run build` before the e2e suites (npm test does)');
    }
    const cache = await runPrepare();
    timings.prepare = Date.now() - started;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-qemu-'));
    const stick = path.join(work, 'stick.img');
    fs.writeFileSync(stick, '');
    fs.truncateSync(stick, 16 * 1024 * 1024);
    fs.mkdirSync(path.join(work, 'mtp'));
    fs.writeFileSync(path.join(work, 'mtp', 'photo.txt'), 'not a photo\n');
    const append = ['console=ttyS0', 'panic=-1', 'quiet', `mamori_node=${process.execPath}`, `mamori_agent=${path.join(HERE, 'guest-agent.js')}`].join(' ');
    if (/\s/.test(process.execPath + HERE)) throw new Error('the QEMU test needs Node and the repository at paths without spaces');
    guest = new Guest([
      ...['-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-m', '1024', '-smp', '1'],
      ...['-nographic', '-no-reboot', '-nic', 'none'],
      ...['-kernel', path.join(cache, 'vmlinuz'), '-initrd', path.join(cache, 'initrd.gz'), '-append', append],
      ...['-device', 'qemu-xhci,id=xhci'],
      // -blockdev, not -drive: a -drive is deleted with its device, and the stick is plugged twice.
      ...['-blockdev', `driver=raw,node-name=stick,file.driver=file,file.filename=${stick}`],
      ...['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'],
      ...['-qmp', `unix:${path.join(work, 'qmp.sock')},server=on,wait=off`],
      ...['-chardev', 'null,id=ser0'],
    ]);
    await qmp.connect(path.join(work, 'qmp.sock'), 20_000);
    const ready = await guest.ready(150_000);
    timings.boot = Date.now() - started - timings.prepare;
    // The agent enforced `block` before anything was plugged.
    expect(ready.firstPass).toMatchObject({ state: 'active', warnings: [] });
  }, 600_000);

  afterAll(async () => {
    // The agent's own record of the run, as the store inside the guest holds it.
    const last = await guest?.snapshot().catch(() => null);
    if (last) {
      const lines = last.events.map((e) => {
        const p = e.payload;
        const what = p.control
          ? String(p.control)
          : p.vendorId
            ? `${String(p.vendorId)}:${String(p.productId)} ${String(p.serial ?? '')}`.trim()
            : String(p.mode ?? '');
        return `  ${e.seq} ${e.type} ${what}`;
      });
      console.log(`guest event store:\n${lines.join('\n')}\nblock uevents:\n${last.uevents.map((u) => `  ${u.at} ${u.action} ${u.name}`).join('\n')}`);
    }
    qmp.close();
    await guest?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (process.env.MAMORI_QEMU_VERBOSE === '1' && guest) console.log(`guest console:\n${guest.transcript.join('\n')}`);
    timings.total = Date.now() - started;
    console.log(`qemu usb e2e timings (ms): ${JSON.stringify(timings)}`);
  }, 60_000);

  it('before any device: root hubs authorize no new interface and the udev rules are in place', async () => {
    const s = await guest!.snapshot();
    expect(s.rootHubs.length).toBeGreaterThan(0);
    for (const hub of s.rootHubs) expect(hub.interfaceAuthorizedDefault).toBe('0');
    expect(s.rules).toContain('ATTR{interface_authorized_default}="0"');
    expect(s.blocks).toEqual([]);
  });

  it('blocks a hot-plugged stick and MTP device with no block device ever appearing, and lets a card reader, keyboard and serial adapter work', async () => {
    const t0 = Date.now();
    await qmp.execute('device_add', { driver: 'usb-storage', bus: 'xhci.0', drive: 'stick', id: 'stick', serial: STICK.serial });
    await qmp.execute('device_add', { driver: 'usb-mtp', bus: 'xhci.0', id: 'mtp', rootdir: path.join(work, 'mtp'), desc: 'Phone' });
    await qmp.execute('device_add', { driver: 'usb-ccid', bus: 'xhci.0', id: 'ccid' });
    await qmp.execute('device_add', { driver: 'usb-kbd', bus: 'xhci.0', id: 'kbd' });
    // always-plugged: a serial adapter otherwise attaches only once something opens its chardev.
    await qmp.execute('device_add', { driver: 'usb-serial', bus: 'xhci.0', id: 'serial', chardev: 'ser0', 'always-plugged': true });
    for (const d of [STICK, MTP, CCID, KBD, SERIAL]) await guest!.call('waitUsb', d);
    // The kernel and udev alone, before any agent pass after the plug (as with the agent stopped).
    const before = await guest!.snapshot();

    const stick = find(before, STICK);
    expect(stick, 'the stick has one mass-storage interface').toHaveLength(1);
    expect(stick[0]).toMatchObject({ interfaceClass: '08', serial: STICK.serial, authorized: '0', driver: '' });
    stickIface = stick[0]!.name;
    const mtp = find(before, MTP);
    expect(mtp.map((i) => i.interfaceClass)).toEqual(['06']);
    expect(mtp[0]).toMatchObject({ authorized: '0', driver: '' });
    // The card reader and keyboard were authorized by the udev rule, and the keyboard bound.
    expect(find(before, CCID).map((i) => [i.interfaceClass, i.authorized])).toEqual([['0b', '1']]);
    expect(find(before, KBD).map((i) => [i.interfaceClass, i.authorized, i.driver])).toEqual([['03', '1', 'usbhid']]);
    // A vendor-specific interface that does not name itself MTP is udev's to authorize too.
    expect(find(before, SERIAL).map((i) => [i.interfaceClass, i.authorized])).toEqual([['ff', '1']]);
    // udev's own account of which of Mamori's rules it applies to each interface (udevadm test
    // parses the rules as udevd does, and reports a rule it cannot parse).
    for (const [d, authorizes] of [
      [STICK, false],
      [MTP, false],
      [CCID, true],
      [KBD, true],
      [SERIAL, true],
    ] as const) {
      const iface = find(before, d)[0]!.name;
      const out = (await guest!.call<{ stdout: string }>('sh', { script: `udevadm test --action=add /sys/bus/usb/devices/${iface} 2>&1` })).stdout;
      expect(out, `udevadm test ${iface}`).toContain('Reading rules file: /etc/udev/rules.d/70-mamori-usb.rules');
      expect(out).not.toMatch(/70-mamori-usb\.rules:\d+.*(Invalid|invalid|Failed to parse|unknown key|ignoring)/);
      expect(/70-mamori-usb\.rules:\d+ ATTR '[^']*\/authorized' writing '1'/.test(out), `${d.vendorId}:${d.productId} authorized by udev`).toBe(authorizes);
    }
    expect(before.blocks).toEqual([]);

    // The agent's pass: decisions recorded, nothing of the above changed.
    const pass = await guest!.call<{ state: string; warnings: string[] }>('reconcile', { reason: 'hint' });
    expect(pass).toMatchObject({ state: 'active', warnings: [] });
    // Give a late scan every chance to show up: usb-storage's delay_use is 0 in the guest.
    await new Promise((r) => setTimeout(r, 1500));
    const after = await guest!.call<Snapshot>('settle');
    expect(find(after, STICK)[0]).toMatchObject({ authorized: '0', driver: '' });
    expect(find(after, MTP)[0]).toMatchObject({ authorized: '0', driver: '' });
    expect(find(after, CCID)[0]).toMatchObject({ authorized: '1' });
    expect(find(after, KBD)[0]).toMatchObject({ authorized: '1', driver: 'usbhid' });
    expect(find(after, SERIAL)[0]).toMatchObject({ authorized: '1' });
    // From the kernel's own uevents since boot, not a poll: no sd* was ever added.
    expect(sdEvents(after), 'block uevents for sd*').toEqual([]);
    expect(after.blocks).toEqual([]);

    const blocked = eventsOf(after, 'device.blocked').map((e) => `${e.payload.vendorId}:${e.payload.productId}:${e.payload.serial}`);
    expect(blocked.sort()).toEqual(
      [`${MTP.vendorId}:${MTP.productId}:${find(after, MTP)[0]!.serial ?? ''}`, `${STICK.vendorId}:${STICK.productId}:${STICK.serial}`].sort(),
    );
    const attached = eventsOf(after, 'device.attached').map((e) => `${e.payload.vendorId}:${e.payload.productId}`);
    expect(attached).toEqual(
      expect.arrayContaining([`${CCID.vendorId}:${CCID.productId}`, `${KBD.vendorId}:${KBD.productId}`, `${SERIAL.vendorId}:${SERIAL.productId}`]),
    );
    timings.plugAndBlock = Date.now() - t0;
  });

  it('a hand-made re-authorization of the blocked stick is undone at the next pass', async () => {
    const s0 = await guest!.snapshot();
    const from = s0.uevents.length;
    const attr = `/sys/bus/usb/devices/${stickIface}/authorized`;
    // What someone with root would type to get the stick back: authorize it and ask for a driver.
    const sh = await guest!.call<{ code: number; stderr: string }>('sh', { script: `echo 1 > ${attr} && echo ${stickIface} > /sys/bus/usb/drivers_probe` });
    expect(sh).toMatchObject({ code: 0 });
    const added = await guest!.call<Uevent>('waitUevent', { action: 'add', name: '^sd[a-z]+$', since: from });
    expect(added.name).toMatch(/^sd/);

    const pass = await guest!.call<{ state: string }>('reconcile', { reason: 'hint' });
    expect(pass.state).toBe('active');
    await guest!.call('waitUevent', { action: 'remove', name: `^${added.name}$`, since: from });
    const s = await guest!.call<Snapshot>('settle');
    expect(find(s, STICK)[0]).toMatchObject({ authorized: '0', driver: '' });
    expect(s.blocks).toEqual([]);
    expect(eventsOf(s, 'policy.drift_corrected').map((e) => e.payload)).toContainEqual(
      expect.objectContaining({ control: `${stickIface} authorized`, expected: '0', found: '1' }),
    );
  });

  it('an allowlisted stick (by serial) gets its block device', async () => {
    const s0 = await guest!.snapshot();
    const from = s0.uevents.length;
    await guest!.call('policy', policy('block', [{ ...STICK }], 2));
    const pass = await guest!.call<{ state: string; warnings: string[] }>('reconcile', { reason: 'policy' });
    expect(pass).toMatchObject({ state: 'active', warnings: [] });
    const added = await guest!.call<Uevent>('waitUevent', { action: 'add', name: '^sd[a-z]+$', since: from });
    stickDisk = added.name;
    const s = await guest!.call<Snapshot>('settle');
    expect(find(s, STICK)[0]).toMatchObject({ authorized: '1', driver: 'usb-storage' });
    expect(s.blocks).toEqual([{ name: stickDisk, usbInterface: stickIface, ro: '0' }]);
    // The MTP device is not on the allowlist and stays blocked.
    expect(find(s, MTP)[0]).toMatchObject({ authorized: '0' });
    const allowed = eventsOf(s, 'device.allowed').filter((e) => e.payload.serial === STICK.serial);
    expect(allowed).toHaveLength(1);
  });

  it('under readonly the stick stays usable and its block device becomes read-only', async () => {
    await guest!.call('policy', policy('readonly', [], 3));
    const pass = await guest!.call<{ state: string; warnings: string[]; ran: { cmd: string; code: number }[] }>('reconcile', { reason: 'policy' });
    expect(pass).toMatchObject({ state: 'active', warnings: [] });
    // The new rules are reloaded at once, then the present stick is made read-only.
    expect(pass.ran.map((r) => r.cmd)).toEqual(['udevadm control --reload', `blockdev --setro /dev/${stickDisk}`]);
    const s = await guest!.call<Snapshot>('settle');
    expect(find(s, STICK)[0]).toMatchObject({ authorized: '1', driver: 'usb-storage' });
    expect(s.blocks).toEqual([{ name: stickDisk, usbInterface: stickIface, ro: '1' }]);
    expect((await guest!.call<{ stdout: string }>('sh', { script: `cat /sys/block/${stickDisk}/ro` })).stdout.trim()).toBe('1');
    expect(s.rules).toContain('blockdev --setro');
    // A phone cannot be made read-only, so under readonly it stays blocked.
    expect(find(s, MTP)[0]).toMatchObject({ authorized: '0' });
  });

  it('under readonly, the stick plugged in again comes up read-only', async () => {
    // The agent reloaded udev's rules when it changed them, so a stick plugged right after the
    // policy change already meets the readonly rule (without the reload it could take 3 s).
    const s0 = await guest!.snapshot();
    const from = s0.uevents.length;
    await qmp.execute('device_del', { id: 'stick' });
    await guest!.call('waitUsb', { ...STICK, present: false });
    await guest!.call('waitUevent', { action: 'remove', name: `^${stickDisk}$`, since: from });
    await guest!.call('reconcile', { reason: 'hint' });

    const mark = (await guest!.snapshot()).uevents.length;
    await qmp.execute('device_add', { driver: 'usb-storage', bus: 'xhci.0', drive: 'stick', id: 'stick', serial: STICK.serial });
    const plugged = await guest!.call<Snapshot>('waitUsb', STICK);
    // Until the agent's pass, the kernel default keeps it unauthorized (udev leaves class 08 alone).
    expect(find(plugged, STICK)[0]).toMatchObject({ authorized: '0', driver: '' });
    expect(sdEvents(plugged, mark)).toEqual([]);
    const pass = await guest!.call<{ state: string; warnings: string[]; ran: { cmd: string }[] }>('reconcile', { reason: 'hint' });
    expect(pass).toMatchObject({ state: 'active', warnings: [] });
    const added = await guest!.call<Uevent>('waitUevent', { action: 'add', name: '^sd[a-z]+$', since: mark });
    const s = await guest!.call<Snapshot>('settle');
    stickIface = find(s, STICK)[0]!.name;
    stickDisk = added.name;
    expect(find(s, STICK)[0]).toMatchObject({ authorized: '1', driver: 'usb-storage' });
    expect(s.blocks).toEqual([{ name: stickDisk, usbInterface: stickIface, ro: '1' }]);
    // udev's rule (RUN blockdev --setro at add) normally gets there before the agent looks.
    console.log(`readonly replug: ${stickDisk} is read-only; the agent's pass ran ${JSON.stringify(pass.ran.map((r) => r.cmd))}`);
  });

  it('under readonly, an allowlisted stick is writable: the flag udev set at add is taken off', async () => {
    await guest!.call('policy', policy('readonly', [{ ...STICK }], 4));
    const pass = await guest!.call<{ state: string; warnings: string[]; ran: { cmd: string }[] }>('reconcile', { reason: 'policy' });
    expect(pass).toMatchObject({ state: 'active', warnings: [] });
    expect(pass.ran.map((r) => r.cmd)).toEqual([`blockdev --setrw /dev/${stickDisk}`]);
    const s = await guest!.call<Snapshot>('settle');
    expect(s.blocks).toEqual([{ name: stickDisk, usbInterface: stickIface, ro: '0' }]);
    expect(find(s, MTP)[0]).toMatchObject({ authorized: '0' });
  });

  it('under audit every control is restored: root hubs, rules file, the MTP interface, read-only flags', async () => {
    // Make the stick read-only again first, as under readonly without the allowlist.
    await guest!.call('policy', policy('readonly', [], 5));
    await guest!.call('reconcile', { reason: 'policy' });
    expect((await guest!.call<Snapshot>('settle')).blocks).toEqual([{ name: stickDisk, usbInterface: stickIface, ro: '1' }]);

    await guest!.call('policy', policy('audit', [], 6));
    const pass = await guest!.call<{ state: string; warnings: string[] }>('reconcile', { reason: 'policy' });
    expect(pass).toMatchObject({ state: 'audit', warnings: [] });
    const s = await guest!.call<Snapshot>('settle');
    for (const hub of s.rootHubs) expect(hub.interfaceAuthorizedDefault).toBe('1');
    expect(s.rules).toBeNull();
    expect(find(s, MTP)[0]).toMatchObject({ authorized: '1' });
    expect(s.blocks).toEqual([{ name: stickDisk, usbInterface: stickIface, ro: '0' }]);
    expect(find(s, KBD)[0]).toMatchObject({ authorized: '1', driver: 'usbhid' });
  });

  it('back under block, a hand re-authorization is undone and recorded as policy.drift_corrected', async () => {
    const s0 = await guest!.snapshot();
    const from = s0.uevents.length;
    await guest!.call('policy', policy('block', [], 7));
    expect(await guest!.call('reconcile', { reason: 'policy' })).toMatchObject({ state: 'active', warnings: [] });
    await guest!.call('waitUevent', { action: 'remove', name: `^${stickDisk}$`, since: from });
    let s = await guest!.call<Snapshot>('settle');
    expect(find(s, STICK)[0]).toMatchObject({ authorized: '0', driver: '' });
    expect(s.blocks).toEqual([]);
    const driftBefore = eventsOf(s, 'policy.drift_corrected').length;

    const mark = s.uevents.length;
    const attr = `/sys/bus/usb/devices/${stickIface}/authorized`;
    expect(await guest!.call('sh', { script: `echo 1 > ${attr} && echo ${stickIface} > /sys/bus/usb/drivers_probe` })).toMatchObject({ code: 0 });
    const added = await guest!.call<Uevent>('waitUevent', { action: 'add', name: '^sd[a-z]+$', since: mark });

    expect(await guest!.call('reconcile', { reason: 'timer' })).toMatchObject({ state: 'active' });
    await guest!.call('waitUevent', { action: 'remove', name: `^${added.name}$`, since: mark });
    s = await guest!.call<Snapshot>('settle');
    expect(find(s, STICK)[0]).toMatchObject({ authorized: '0', driver: '' });
    expect(s.blocks).toEqual([]);
    const drift = eventsOf(s, 'policy.drift_corrected').slice(driftBefore);
    expect(drift.map((e) => e.payload)).toEqual([expect.objectContaining({ control: `${stickIface} authorized`, expected: '0', found: '1' })]);
  });
});
