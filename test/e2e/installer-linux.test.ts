import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { extractAll } from '@electron/asar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESETS, buildSysfs } from '../fixtures/linux/sysfs';
import { usbAttr } from '../fixtures/linux/sysfs-enforcement';
import * as packageDirModule from '../../scripts/package-dir.js';
import { ROOT, mamori, requireBuild, startCollector, waitFor, type TestCollector } from './helpers';

// The deb's life on a terminal, in a fixture root: the `--linux dir` build laid out where the deb
// puts it (/opt/Mamori), the maintainer scripts where dpkg keeps them, a sysfs tree with a
// keyboard and a USB stick, and a real collector on 127.0.0.1. Each step runs chrooted into the
// fixture root inside a private mount namespace (host /usr, /dev and /proc bound in, read-only
// /usr), so the scripts and the systemd unit's ExecStart run verbatim, with their absolute paths,
// and nothing on the host is touched. What differs from a real install: the stand-in Electron is
// Node, so app.asar is extracted in place (a directory of that name); systemd is not running, so
// the test does what the unit says (its environment, its runtime directory, SIGTERM to stop).

const UNIT = fs.readFileSync(path.join(ROOT, 'packaging', 'linux', 'mamori-agent.service'), 'utf8');
const canRun = process.platform === 'linux' && process.getuid?.() === 0 && fs.existsSync('/usr/bin/unshare') && fs.existsSync('/usr/sbin/chroot');
const title = canRun
  ? 'the deb on a Linux terminal (fixture root)'
  : 'the deb on a Linux terminal (skipped: needs root, unshare and chroot to run the maintainer scripts in a private mount namespace; CI runs as root)';

// The CommonJS build script, as `npm run package:dir` runs it.
const packageDir = (packageDirModule as { packageDir: (o: { platforms: 'linux'[]; output: string }) => Record<string, string> }).packageDir;

let dir = '';
let root = '';
let collector: TestCollector;
const at = (p: string) => path.join(root, p);

/** Inside the fixture root, as root, with only the environment given (systemd and dpkg start clean). */
function inRootCommand(argv: string[], env: Record<string, string> = {}): [string, string[], NodeJS.ProcessEnv] {
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  const bindNode =
    nodePrefix.startsWith('/usr/') || nodePrefix === '/usr' ? '' : `mkdir -p "$R${nodePrefix}" && mount --bind "${nodePrefix}" "$R${nodePrefix}"`;
  const script = [
    'set -e',
    'R=$1; shift',
    'mount --bind /usr "$R/usr"',
    'mount -o remount,bind,ro "$R/usr" 2>/dev/null || true',
    'mount --rbind /dev "$R/dev"',
    'mount --rbind /proc "$R/proc"',
    bindNode,
    'exec chroot "$R" "$@"',
  ].join('\n');
  return [
    '/usr/bin/unshare',
    ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', root, ...argv],
    { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', ...env },
  ];
}

function inRoot(argv: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const [cmd, args, e] = inRootCommand(argv, env);
  const r = spawnSync(cmd, args, { env: e, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A maintainer script as dpkg runs it. */
const dpkg = (script: 'postinst' | 'prerm' | 'postrm', arg: string, env: Record<string, string> = {}) =>
  inRoot(['/bin/sh', `/var/lib/dpkg/info/mamori.${script}`, arg], env);

/** The unit's ExecStart and Environment= (no quoting in our unit, which the first test checks). */
function service(): { argv: string[]; env: Record<string, string> } {
  const exec = /^ExecStart=(.+)$/m.exec(UNIT)![1]!;
  const env = Object.fromEntries([...UNIT.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { argv: exec.split(' '), env };
}

interface Agent {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** The service as systemd starts it: RuntimeDirectory=mamori (0755), then ExecStart with Environment=. */
function startService(): Agent {
  fs.mkdirSync(at('run/mamori'), { recursive: true, mode: 0o755 });
  const { argv, env } = service();
  const [cmd, args, e] = inRootCommand(argv, env);
  const child = spawn(cmd, args, { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

const socket = () => at('run/mamori/agent.sock');
const status = async () => {
  const r = await mamori(['agent', 'status', '--ipc', socket(), '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { agentId: string | null; segment: string | null; enforcement: string; collectorReachable: boolean };
};
const provisionJson = () => JSON.parse(fs.readFileSync(at('var/lib/mamori/provision.json'), 'utf8')) as Record<string, unknown>;
const writeProvisionFile = (value: unknown) => fs.writeFileSync(at('etc/mamori/mamori-provision.json'), JSON.stringify(value));

describe.skipIf(!canRun)(title, () => {
  beforeAll(async () => {
    requireBuild();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-deb-'));
    root = path.join(dir, 'root');
    const linux = packageDir({ platforms: ['linux'], output: path.join(dir, 'release') }).linux!;

    // /opt/Mamori as the deb installs it, app.asar extracted in place for the stand-in Electron.
    fs.cpSync(linux, at('opt/Mamori'), { recursive: true });
    const asar = at('opt/Mamori/resources/app.asar');
    extractAll(asar, `${asar}.extracted`);
    fs.rmSync(asar);
    fs.renameSync(`${asar}.extracted`, asar);
    // /usr/bin/mamori (the fixture's /usr is the host's, read-only): same script, beside it.
    fs.copyFileSync(path.join(ROOT, 'packaging', 'linux', 'mamori'), at('opt/mamori-command'));

    // The rest of a root: the host's /usr and its merged-/usr links, a few files from /etc.
    for (const d of ['usr', 'dev', 'proc', 'tmp', 'run', 'var/lib/dpkg/info', 'var/log', 'etc/mamori', 'etc/udev/rules.d'])
      fs.mkdirSync(at(d), { recursive: true });
    fs.chmodSync(at('tmp'), 0o1777);
    for (const link of ['bin', 'lib', 'lib64', 'sbin']) {
      const target = fs.readlinkSync(`/${link}`);
      fs.symlinkSync(target, at(link));
    }
    for (const f of ['passwd', 'group', 'hosts', 'nsswitch.conf', 'ld.so.cache', 'localtime', 'os-release']) {
      if (fs.existsSync(`/etc/${f}`)) fs.copyFileSync(fs.realpathSync(`/etc/${f}`), at(`etc/${f}`));
    }
    fs.writeFileSync(at('etc/machine-id'), '0f1e2d3c4b5a69788796a5b4c3d2e1f0\n');
    for (const s of ['postinst', 'prerm', 'postrm']) fs.copyFileSync(path.join(ROOT, 'packaging', 'linux', s), at(`var/lib/dpkg/info/mamori.${s}`));
    buildSysfs(root, [PRESETS.keyboard('1-1'), PRESETS.stickWithSerial('1-2', 'MAMORITEST01')]);

    collector = await startCollector(path.join(dir, 'collector'));
  }, 120_000);

  afterAll(async () => {
    await collector?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the unit runs Electron as Node on the files the deb installs (its ExecStart needs no shell quoting)', () => {
    const { argv, env } = service();
    expect(UNIT).not.toMatch(/^ExecStart=.*["']/m);
    expect(env).toEqual({ ELECTRON_RUN_AS_NODE: '1' });
    expect(argv.slice(0, 2)).toEqual(['/opt/Mamori/mamori', '/opt/Mamori/resources/app.asar/bin/mamori.js']);
    expect(fs.existsSync(at(argv[0]!)) && fs.existsSync(at(argv[1]!))).toBe(true);
  });

  it('postinst fails the install on a bad provision, and on none at all, with the agent one-line reason', () => {
    writeProvisionFile({ collectorUrl: collector.url, token: 'enr_abcdefgh', segment: 'kokuho' });
    const bad = dpkg('postinst', 'configure');
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^mamori: インストール設定（プロビジョニング）が不正です: SEGMENT（区分）は mynumber・lgwan・internet のいずれかにしてください \/ invalid provisioning: segment: /,
      ),
    ]);
    expect(fs.existsSync(at('var/lib/mamori/provision.json'))).toBe(false);

    fs.rmSync(at('etc/mamori/mamori-provision.json'));
    const none = dpkg('postinst', 'configure');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/インストール設定がありません。.* \/ no provisioning: pass COLLECTOR, TOKEN and SEGMENT/);
    expect(fs.readFileSync(at('var/lib/mamori/install.log'), 'utf8')).toMatch(
      /agent provision failed: .*SEGMENT（区分）[\s\S]*agent provision failed: インストール設定がありません/,
    );
  });

  it('postinst stores the provision from /etc/mamori, with MAMORI_* variables over it, before the service starts', async () => {
    writeProvisionFile({ collectorUrl: collector.url, token: 'enr_wrong000', segment: 'internet' });
    const token = await collector.token('lgwan');
    const r = dpkg('postinst', 'configure', { MAMORI_TOKEN: token, MAMORI_SEGMENT: 'lgwan' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('インストール設定を保存しました');
    expect(provisionJson()).toEqual({ collectorUrl: collector.url, token, segment: 'lgwan' });
    expect(fs.statSync(at('var/lib/mamori')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(at('var/lib/mamori/provision.json')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(at('opt/Mamori/chrome-sandbox')).mode & 0o111).not.toBe(0);
  });

  it('the service enrolls on its first start, drops the token, enforces, and keeps enforcing when a tray is killed', async () => {
    const agent = startService();
    try {
      await waitFor(async () => (await collector.api<unknown[]>('/api/v1/admin/terminals')).body.length === 1, 'the terminal to enroll', 60_000);
      expect((await collector.api<{ segment: string }[]>('/api/v1/admin/terminals')).body).toEqual([expect.objectContaining({ segment: 'lgwan' })]);
      await waitFor(() => provisionJson().enrolled === true, 'the token to be dropped');
      expect(provisionJson()).not.toHaveProperty('token');

      // lgwan is read-only: the udev rules are in force and new interfaces wait for the agent.
      await waitFor(() => fs.existsSync(at('etc/udev/rules.d/70-mamori-usb.rules')), 'the udev rules', 30_000);
      await waitFor(() => usbAttr(root, 'usb1', 'interface_authorized_default') === '0', 'the root hub default');
      await waitFor(async () => (await status().catch(() => null))?.enforcement === 'active', 'enforcement to be active', 30_000);
      const first = await status();
      expect(first).toMatchObject({ segment: 'lgwan', enforcement: 'active', collectorReachable: true });

      // IT's `mamori agent status` on the terminal (/usr/bin/mamori), with its default socket.
      const cmd = inRoot(['/bin/sh', '/opt/mamori-command', 'agent', 'status']);
      expect(cmd.code, cmd.stderr).toBe(0);
      expect(cmd.stdout).toContain(`agent: ${first.agentId}`);

      // A tray connected, then killed mid-request: the agent serves on.
      const tray = spawn(
        process.execPath,
        [
          '-e',
          `const s=require('net').connect(${JSON.stringify(socket())});s.on('connect',()=>{s.write('{"jsonrpc":"2.0","id":1,"method":"status"}\\n');setTimeout(()=>{},60000)})`,
        ],
        { stdio: 'ignore' },
      );
      await new Promise((r) => setTimeout(r, 500));
      tray.kill('SIGKILL');
      await new Promise((r) => tray.once('exit', r));
      expect((await status()).enforcement).toBe('active');
      expect(agent.child.exitCode).toBeNull();

      // systemd stops it with SIGTERM.
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    } finally {
      if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    }
    const events = JSON.parse((await mamori(['agent', 'events', '--data-dir', at('var/lib/mamori'), '--json'])).stdout) as {
      type: string;
      payload: Record<string, unknown>;
    }[];
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['agent.started', 'policy.applied', 'device.attached', 'agent.stopped']));
  });

  it('an upgrade keeps the enrollment and the data: postinst with the spent token passes, the same terminal comes back', async () => {
    const before = (await collector.api<{ agentId: string }[]>('/api/v1/admin/terminals')).body[0]!.agentId;
    const r = dpkg('postinst', 'configure', { MAMORI_SEGMENT: 'lgwan' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`この端末は登録済みです（${before}、区分 lgwan`);
    expect(provisionJson()).not.toHaveProperty('token');

    const agent = startService();
    try {
      await waitFor(async () => (await status().catch(() => null))?.agentId === before, 'the agent to answer as the same terminal', 30_000);
      expect((await collector.api<unknown[]>('/api/v1/admin/terminals')).body).toHaveLength(1);
      expect(await mamori(['agent', 'status', '--ipc', socket()])).toMatchObject({ code: 0 });
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    } finally {
      if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    }
  });

  it('prerm on upgrade leaves everything; prerm on removal gives the OS its USB controls back and tells the collector', async () => {
    expect(dpkg('prerm', 'upgrade').code).toBe(0);
    expect(fs.existsSync(at('etc/udev/rules.d/70-mamori-usb.rules'))).toBe(true);

    const r = dpkg('prerm', 'remove');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('released: removable-media controls given back to the OS');
    expect(fs.existsSync(at('etc/udev/rules.d/70-mamori-usb.rules'))).toBe(false);
    expect(usbAttr(root, 'usb1', 'interface_authorized_default')).toBe('1');
    expect(usbAttr(root, '1-2:1.0', 'authorized')).toBe('1');
    const stopped = (await collector.api<{ type: string; payload: { reason: string } }[]>('/api/v1/admin/events?type=agent.stopped')).body;
    expect(stopped.map((e) => e.payload.reason)).toContainEqual(expect.stringMatching(/^released \(uninstall\)/));
  });

  it('release refuses to run while the service does: it would undo it at the next pass', async () => {
    const agent = startService();
    try {
      await waitFor(async () => (await status().catch(() => null)) !== null, 'the agent to answer', 30_000);
      const r = inRoot(['/bin/sh', '/opt/mamori-command', 'agent', 'release']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/エージェントのサービスが動作中です。先に停止してください \/ the agent service is still running/);
      agent.child.kill('SIGTERM');
      await agent.exited;
    } finally {
      if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    }
    // Leave the fixture as removal left it, for purge.
    expect(dpkg('prerm', 'remove').code).toBe(0);
  });

  it('purge removes the local log and the provisioning; remove alone keeps them', () => {
    expect(dpkg('postrm', 'remove').code).toBe(0);
    expect(fs.existsSync(at('var/lib/mamori/agent.db'))).toBe(true);
    expect(dpkg('postrm', 'purge').code).toBe(0);
    expect(fs.existsSync(at('var/lib/mamori'))).toBe(false);
    expect(fs.existsSync(at('etc/mamori'))).toBe(false);
  });
});
