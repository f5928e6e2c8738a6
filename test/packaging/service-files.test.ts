import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parsePlist } from '../../src/agent/enforcement/macos';

const ROOT = path.resolve(__dirname, '../..');
const PKG = path.join(ROOT, 'packaging');
const read = (f: string) => fs.readFileSync(path.join(PKG, f), 'utf8');
const hasSystemd = fs.existsSync('/usr/bin/systemd-analyze');

/** electron-builder.yml as electron-builder reads it (js-yaml is its own YAML reader). */
interface Resource {
  from: string;
  to: string;
  filter?: string[];
}
const config = load(fs.readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8')) as {
  directories: { buildResources: string };
  asarUnpack: string[];
  win: { extraResources: Resource[] };
  nsis: Record<string, unknown>;
  msi: Record<string, unknown>;
  msiProjectCreated: string;
  deb: { afterInstall: string; afterRemove: string; fpm: string[]; depends: string[] };
  mac: { extraResources: Resource[] };
  pkg: { scripts: string };
};

describe('systemd unit', () => {
  it.skipIf(!hasSystemd)(
    hasSystemd
      ? 'passes systemd-analyze verify (but for the binary only a package installs)'
      : 'passes systemd-analyze verify (skipped: systemd-analyze is not installed; `apt-get install -y systemd`, which .ci/run does)',
    () => {
      const r = spawnSync('systemd-analyze', ['verify', path.join(PKG, 'linux', 'mamori-agent.service')], { encoding: 'utf8' });
      const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/is not executable|No such file/.test(l));
      expect(problems).toEqual([]);
    },
  );

  it('restarts always and keeps sysfs and the udev rules writable under its hardening', () => {
    const unit = read('linux/mamori-agent.service');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^Environment=ELECTRON_RUN_AS_NODE=1$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(unit).toMatch(/^ReadWritePaths=.*\/sys\/bus\/usb.*\/etc\/udev\/rules\.d/m);
    // ProtectKernelTunables would make /sys read-only and stop enforcement.
    expect(unit).not.toMatch(/^ProtectKernelTunables=yes/m);
    // The service runs the same files the deb installs and the same data directory the CLI defaults to.
    expect(unit).toMatch(/^ExecStart=\/opt\/Mamori\/mamori \/opt\/Mamori\/resources\/app\.asar\/bin\/mamori\.js agent run --data-dir \/var\/lib\/mamori /m);
  });
});

describe('WinSW service definition', () => {
  const xml = read('windows/mamori-agent.xml');
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml) as { service: Record<string, unknown> };

  it('runs the agent on Electron as Node, automatically, restarting on failure, as LocalSystem', () => {
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(doc.service).toMatchObject({
      id: 'MamoriAgent',
      startmode: 'Automatic',
      env: { name: 'ELECTRON_RUN_AS_NODE', value: '1' },
      stopparentprocessfirst: true,
    });
    // WinSW installs as LocalSystem when no account is named.
    expect(doc.service.serviceaccount).toBeUndefined();
    expect((doc.service.onfailure as { action: string }[]).map((f) => f.action)).toEqual(['restart', 'restart', 'restart']);
    expect(String(doc.service.arguments)).toContain('agent run --data-dir "%ProgramData%\\Mamori"');
  });

  it('uses only elements the shipped WinSW reads', () => {
    // node-windows ships WinSW 1.17, which predates <serviceaccount><username> and
    // <delayedAutoStart>: names it does not know are silently ignored. Its element names are the
    // UTF-16 strings of the binary.
    const exe = fs.readFileSync(path.join(ROOT, 'node_modules', 'node-windows', 'bin', 'winsw', 'winsw.exe'));
    // .NET's user-string heap stores each as a length byte then UTF-16, so either byte parity.
    const decoded = [exe.toString('utf16le'), exe.subarray(1).toString('utf16le')];
    const strings = new Set(decoded.flatMap((t) => t.split(/[^\x20-\x7e]+/)).map((s) => s.replace(/^\/\//, '')));
    expect(strings.has('1.17.0.0')).toBe(true);
    const used = [...xml.matchAll(/<([a-zA-Z]+)[\s>/]/g)].map((m) => m[1]!).filter((n) => n !== 'service' && n !== 'xml');
    expect(used.filter((n) => !strings.has(n))).toEqual([]);
  });

  it('finds Mamori.exe and the agent where electron-builder puts them, beside WinSW named for its XML', () => {
    const resources = Object.fromEntries(config.win.extraResources.map((r) => [r.to, r.from]));
    expect(resources['service/mamori-agent.exe']).toBe('node_modules/node-windows/bin/winsw/winsw.exe');
    expect(resources['service/mamori-agent.xml']).toBe('packaging/windows/mamori-agent.xml');
    expect(resources['service/mamori-agent.exe.config']).toBeDefined();
    for (const from of Object.values(resources)) expect(fs.existsSync(path.join(ROOT, from))).toBe(true);
    // %BASE% is <install dir>\resources\service.
    const base = path.win32.join('C:\\Program Files\\Mamori', 'resources', 'service');
    expect(path.win32.resolve(String(doc.service.executable).replace('%BASE%', base))).toBe('C:\\Program Files\\Mamori\\Mamori.exe');
    const script = /"([^"]+)"/.exec(String(doc.service.arguments))![1]!;
    expect(path.win32.resolve(script.replace('%BASE%', base))).toBe('C:\\Program Files\\Mamori\\resources\\app.asar\\bin\\mamori.js');
  });

  it('ships a mamori.cmd that runs the CLI on Electron as Node', () => {
    const cmd = read('windows/mamori.cmd');
    expect(cmd).toMatch(/\r\n/);
    expect(cmd).toMatch(/^set ELECTRON_RUN_AS_NODE=1\r$/m);
    expect(cmd).toMatch(/^"%~dp0\.\.\\Mamori\.exe" "%~dp0app\.asar\\bin\\mamori\.js" %\*\r$/m);
  });
});

describe('launchd', () => {
  const daemon = parsePlist(read('macos/jp.mamori.agent.plist')) as Record<string, unknown>;
  const tray = parsePlist(read('macos/jp.mamori.tray.plist')) as Record<string, unknown>;

  it('keeps the agent daemon alive on Electron as Node, with a socket path macOS can create', () => {
    expect(daemon).toMatchObject({ Label: 'jp.mamori.agent', KeepAlive: true, RunAtLoad: true, EnvironmentVariables: { ELECTRON_RUN_AS_NODE: '1' } });
    const args = daemon.ProgramArguments as string[];
    expect(args.slice(0, 4)).toEqual([
      '/Applications/Mamori.app/Contents/MacOS/Mamori',
      '/Applications/Mamori.app/Contents/Resources/app.asar/bin/mamori.js',
      'agent',
      'run',
    ]);
    // / is read-only on macOS: /run/mamori cannot be created, /var/run/mamori can.
    expect(args[args.indexOf('--ipc') + 1]).toBe('/var/run/mamori/agent.sock');
  });

  it('starts the tray at every login without keeping it alive, pointed at the daemon', () => {
    expect(tray).toMatchObject({ Label: 'jp.mamori.tray', RunAtLoad: true, KeepAlive: false, LimitLoadToSessionType: 'Aqua' });
    expect((tray.EnvironmentVariables as Record<string, string>).MAMORI_IPC).toBe((daemon.ProgramArguments as string[]).at(-1));
  });

  it('has executable pkg scripts where electron-builder looks for them', () => {
    const scripts = path.resolve(ROOT, config.directories.buildResources, config.pkg.scripts);
    for (const s of ['preinstall', 'postinstall']) {
      const file = path.join(scripts, s);
      expect(fs.statSync(file).mode & 0o111).not.toBe(0);
      execFileSync('sh', ['-n', file]);
    }
    const shipped = config.mac.extraResources[0]!;
    for (const f of shipped.filter ?? []) expect(fs.existsSync(path.join(ROOT, shipped.from, f))).toBe(true);
    execFileSync('sh', ['-n', path.join(PKG, 'macos', 'uninstall.sh')]);
  });
});

describe('deb maintainer scripts', () => {
  const scripts = ['postinst', 'prerm', 'postrm'];

  it('are valid shell, and wired into the deb the way fpm and electron-builder take them', () => {
    for (const s of scripts) execFileSync('sh', ['-n', path.join(PKG, 'linux', s)]);
    expect(config.deb.afterInstall).toBe('packaging/linux/postinst');
    expect(config.deb.afterRemove).toBe('packaging/linux/postrm');
    expect(config.deb.fpm.slice(0, 2)).toEqual(['--before-remove', 'packaging/linux/prerm']);
    const mapped = Object.fromEntries(config.deb.fpm.filter((a) => a.includes('=')).map((a) => a.split('=').reverse()));
    expect(mapped).toEqual({
      '/lib/systemd/system/mamori-agent.service': 'packaging/linux/mamori-agent.service',
      '/etc/xdg/autostart/mamori-tray.desktop': 'packaging/linux/mamori-tray.desktop',
      '/usr/bin/mamori': 'packaging/linux/mamori',
    });
    for (const from of Object.values(mapped)) expect(fs.existsSync(path.join(ROOT, from))).toBe(true);
    expect(config.deb.depends).toEqual(expect.arrayContaining(['udev', 'util-linux', 'iproute2']));
  });

  it('contain no placeholder electron-builder would expand or reject', () => {
    // electron-builder runs afterInstall/afterRemove through /\${([a-zA-Z]+)}/ and fails the
    // build on a name it does not define: shell variables must be written $NAME.
    for (const s of ['postinst', 'postrm']) expect(read(`linux/${s}`)).not.toMatch(/\$\{[a-zA-Z]+\}/);
  });

  it('provision before the service starts, and fail the install when provisioning fails', () => {
    const postinst = read('linux/postinst');
    expect(postinst).toMatch(/^set -e$/m);
    expect(postinst.indexOf('agent provision')).toBeGreaterThan(0);
    expect(postinst.indexOf('agent provision')).toBeLessThan(postinst.indexOf('systemctl restart'));
  });

  it('do nothing on an upgrade: the service keeps running and the data stays', () => {
    // Run for real: on these arguments the scripts exit before touching anything.
    for (const [script, arg] of [
      ['prerm', 'upgrade'],
      ['prerm', 'failed-upgrade'],
      ['postinst', 'triggered'],
    ] as const) {
      // No PATH: were they to run a command, it would fail.
      const r = spawnSync('/bin/sh', [path.join(PKG, 'linux', script), arg], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
      expect(r.status, `${script} ${arg}: ${r.stderr}`).toBe(0);
    }
    expect(read('linux/postrm')).toMatch(/purge\)\n\s+rm -rf \/var\/lib\/mamori \/etc\/mamori/);
  });

  it('restore the OS controls on removal, by hand if the agent cannot', () => {
    const prerm = read('linux/prerm');
    expect(prerm).toContain('agent release');
    expect(prerm).toContain('70-mamori-usb.rules');
    expect(prerm).toContain('interface_authorized_default');
  });

  it('ship a /usr/bin/mamori that runs the CLI on Electron as Node', () => {
    expect(read('linux/mamori')).toContain('ELECTRON_RUN_AS_NODE=1 exec /opt/Mamori/mamori /opt/Mamori/resources/app.asar/bin/mamori.js "$@"');
    expect(read('linux/mamori-tray.desktop')).toMatch(/^Exec=\/opt\/Mamori\/mamori$/m);
  });
});

describe('electron-builder configuration', () => {
  it('unpacks both native modules from the asar', () => {
    expect(config.asarUnpack).toEqual(expect.arrayContaining(['node_modules/better-sqlite3/**', 'node_modules/usb-detection/**']));
  });

  it('builds silent per-machine installers with the NSIS include and the MSI hook', async () => {
    expect(config.nsis).toMatchObject({ oneClick: true, perMachine: true, runAfterFinish: false, include: 'packaging/windows/installer.nsh' });
    expect(config.msi).toMatchObject({ perMachine: true, runAfterFinish: false });
    expect(fs.existsSync(path.join(ROOT, String(config.nsis.include)))).toBe(true);
    const hook = (await import(path.join(ROOT, config.msiProjectCreated))) as { msiProjectCreated: unknown };
    expect(typeof hook.msiProjectCreated).toBe('function');
  });

  it('makes a stand-in Electron distribution of the shape electron-builder copies', async () => {
    const { createElectronStandin } = (await import(path.join(ROOT, 'scripts', 'electron-standin.js'))) as {
      createElectronStandin: (dir: string, p: string, o?: { node?: string }) => string;
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-standin-'));
    try {
      const linux = createElectronStandin(path.join(dir, 'linux'), 'linux');
      for (const f of ['electron', 'version', 'LICENSE', 'LICENSES.chromium.html', 'locales', 'resources'])
        expect(fs.existsSync(path.join(linux, f))).toBe(true);
      expect(
        spawnSync(path.join(linux, 'electron'), ['-p', 'process.versions.node'], {
          env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
          encoding: 'utf8',
        }).stdout.trim(),
      ).toBe(process.versions.node);
      const r = spawnSync(path.join(linux, 'electron'), [], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('the tray needs the real Electron binary');
      const win = createElectronStandin(path.join(dir, 'win'), 'win32');
      expect(fs.readFileSync(path.join(win, 'electron.exe')).subarray(0, 2).toString()).toBe('MZ');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
