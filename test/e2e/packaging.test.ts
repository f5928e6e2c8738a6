import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { extractAll, listPackage, statFile } from '@electron/asar';
import { Arch, Platform, build } from 'electron-builder';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as msiProjectModule from '../../packaging/windows/msi-project.js';
import * as packageDirModule from '../../scripts/package-dir.js';
import { ROOT, mamori, requireBuild } from './helpers';

// electron-builder's `--linux dir` and `--win dir` builds as `npm run package:dir` runs them on a
// closed network (scripts/package-dir.js: a stand-in Electron, no dependency rebuild, nothing
// downloaded), and what electron-builder would hand the tools it downloads for the final
// installers: fpm's arguments for the deb, the WiX project for the MSI. electron-builder's own
// hooks stop it right before each download.

// CommonJS build scripts, as npm runs them (no type declarations: the shapes are stated here).
const packageDir = (packageDirModule as { packageDir: (o: { platforms: ('linux' | 'win32')[]; output: string }) => Record<string, string> }).packageDir;
const { msiProjectCreated, CUSTOM_ACTIONS } = msiProjectModule as {
  msiProjectCreated: (file: string) => Promise<void>;
  CUSTOM_ACTIONS: { id: string; command: string }[];
};

let dir = '';
let linux = '';
let win = '';

beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-package-'));
  const out = packageDir({ platforms: ['linux', 'win32'], output: path.join(dir, 'release') });
  linux = out.linux!;
  win = out.win32!;
}, 180_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** What the tray and the agent need inside app.asar. */
const APP_FILES = [
  '/package.json',
  '/bin/mamori.js',
  '/dist/cli/index.js',
  '/dist/main/main.js',
  '/dist/preload/preload.js',
  '/dist/web/renderer/status.html',
  '/dist/agent/main.js',
  '/dist/agent/cli/index.js',
  '/dist/agent/cli/run.js',
  '/dist/agent/provision.js',
  '/dist/agent/enforcement/release.js',
  '/dist/shared/index.js',
  '/assets/tray-protected.png',
];
const NATIVE = ['node_modules/better-sqlite3/build/Release/better_sqlite3.node', 'node_modules/usb-detection/build/Release/detection.node'];

function checkAsar(resources: string): string[] {
  const asar = path.join(resources, 'app.asar');
  const entries = listPackage(asar, { isPack: false });
  expect(entries).toEqual(expect.arrayContaining(APP_FILES));
  expect(entries.filter((e) => e.startsWith('/dist/') && e.endsWith('.map'))).toEqual([]);
  // The native modules' sources stay out; their binaries are unpacked beside the archive.
  expect(entries.filter((e) => /better-sqlite3\/(deps|src)\//.test(e))).toEqual([]);
  for (const file of NATIVE) {
    expect((statFile(asar, file) as { unpacked?: boolean }).unpacked, file).toBe(true);
    expect(fs.existsSync(path.join(resources, 'app.asar.unpacked', file)), file).toBe(true);
  }
  return entries;
}

describe('the dir builds', () => {
  it('Linux: one asar with the tray (main, preload, renderer) and the agent, native modules unpacked', () => {
    checkAsar(path.join(linux, 'resources'));
    expect(fs.statSync(path.join(linux, 'mamori')).mode & 0o111).not.toBe(0);
  });

  it('Linux: the packaged CLI runs on the runtime the service uses, and refuses a bad provision', async () => {
    // The stand-in Electron is Node and cannot read an asar: give it the archive extracted in place.
    const app = path.join(dir, 'extracted', 'app.asar');
    extractAll(path.join(linux, 'resources', 'app.asar'), app);
    const run = (args: string[]) => spawnSync(path.join(linux, 'mamori'), [path.join(app, 'bin', 'mamori.js'), ...args], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, encoding: 'utf8' });
    const version = run(['--version']);
    expect(version.stdout.trim(), `${version.status} ${version.stderr}`).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    const bad = run(['agent', 'provision', '--data-dir', path.join(dir, 'data'), '--', '/SEGMENT=kokuho']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^mamori: インストール設定（プロビジョニング）が不正です: .* \/ invalid provisioning: /);
  });

  it('Windows: the same app, WinSW named for its XML, and the files installer.nsh runs', () => {
    const linuxEntries = listPackage(path.join(linux, 'resources', 'app.asar'), { isPack: false });
    expect(checkAsar(path.join(win, 'resources')).sort()).toEqual([...linuxEntries].sort());
    expect(fs.readFileSync(path.join(win, 'Mamori.exe')).subarray(0, 2).toString()).toBe('MZ');
    const service = path.join(win, 'resources', 'service');
    expect(fs.readFileSync(path.join(service, 'mamori-agent.exe')).equals(fs.readFileSync(path.join(ROOT, 'node_modules', 'node-windows', 'bin', 'winsw', 'winsw.exe')))).toBe(true);
    expect(fs.readFileSync(path.join(service, 'mamori-agent.xml'), 'utf8')).toBe(fs.readFileSync(path.join(ROOT, 'packaging', 'windows', 'mamori-agent.xml'), 'utf8'));
    expect(fs.existsSync(path.join(service, 'mamori-agent.exe.config'))).toBe(true);
    expect(fs.existsSync(path.join(win, 'resources', 'mamori.cmd'))).toBe(true);
    // Every $INSTDIR path the NSIS include names is in the build.
    const nsh = fs.readFileSync(path.join(ROOT, 'packaging', 'windows', 'installer.nsh'), 'utf8');
    const named = [...nsh.matchAll(/\$INSTDIR\\([\w.\\-]+?\.(?:exe|js))/g)].map((m) => m[1]!.replace(/\\/g, '/'));
    expect(named).toEqual(expect.arrayContaining(['resources/service/mamori-agent.exe', 'resources/app.asar/bin/mamori.js']));
    for (const p of named) {
      const [outer, inner] = p.split('app.asar/');
      if (inner) expect(listPackage(path.join(win, outer!, 'app.asar'), { isPack: false })).toContain(`/${inner}`);
      else expect(fs.existsSync(path.join(win, p)), p).toBe(true);
    }
    expect(nsh).toContain('"$INSTDIR\\${APP_EXECUTABLE_FILENAME}"');
  });
});

describe('the installers electron-builder would make on a connected machine', () => {
  it('the deb: fpm gets the maintainer scripts, the unit, the autostart entry and the command, with the app in /opt/Mamori', async () => {
    let fpm: { args: string[]; scripts: Record<string, string> } | null = null;
    await build({
      targets: Platform.LINUX.createTarget('deb', Arch.x64),
      prepackaged: linux,
      projectDir: ROOT,
      config: { npmRebuild: false, directories: { output: path.join(dir, 'deb') } },
      // Called with fpm's arguments right before fpm (a download) runs; true stops there.
      effectiveOptionComputed: async ([args]: [string[]]) => {
        const scripts: Record<string, string> = {};
        for (const flag of ['--after-install', '--after-remove', '--before-remove']) scripts[flag] = fs.readFileSync(path.resolve(ROOT, args[args.indexOf(flag) + 1]!), 'utf8');
        fpm = { args, scripts };
        return true;
      },
    });
    expect(fpm).not.toBeNull();
    const { args, scripts } = fpm!;
    const source = (f: string) => fs.readFileSync(path.join(ROOT, 'packaging', 'linux', f), 'utf8');
    // electron-builder ran postinst and postrm through its template expansion: unchanged.
    expect(scripts['--after-install']).toBe(source('postinst'));
    expect(scripts['--after-remove']).toBe(source('postrm'));
    expect(scripts['--before-remove']).toBe(source('prerm'));
    for (const s of Object.values(scripts)) execFileSync('sh', ['-n', '-c', s]);
    expect(args).toEqual(
      expect.arrayContaining([
        'packaging/linux/mamori-agent.service=/lib/systemd/system/mamori-agent.service',
        'packaging/linux/mamori-tray.desktop=/etc/xdg/autostart/mamori-tray.desktop',
        'packaging/linux/mamori=/usr/bin/mamori',
        `${linux}/=/opt/Mamori`,
      ]),
    );
    expect(args[args.indexOf('--name') + 1]).toBe('mamori');
  });

  it('the MSI: the WiX project gets the service, the provisioning properties, the data folder, the tray autostart and the release', async () => {
    let wxs = '';
    const stop = new Error('captured before WiX is downloaded');
    await expect(
      build({
        targets: Platform.WINDOWS.createTarget('msi', Arch.x64),
        prepackaged: win,
        projectDir: ROOT,
        config: {
          npmRebuild: false,
          directories: { output: path.join(dir, 'msi') },
          msiProjectCreated: async (file: string) => {
            await msiProjectCreated(file);
            wxs = fs.readFileSync(file, 'utf8');
            throw stop;
          },
        },
      }),
    ).rejects.toBe(stop);

    expect(XMLValidator.validate(wxs)).toBe(true);
    type Node = Record<string, unknown>;
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['Component', 'CustomAction', 'Custom', 'Property', 'ComponentRef', 'InstallExecuteSequence'].includes(name) }).parse(wxs) as { Wix: { Product: Node } };
    const product = doc.Wix.Product;
    const components = [...(product.Component as Node[]), ...((product.ComponentGroup as Node).Component as Node[])];
    const winsw = components.find((c) => String((c.File as Node | undefined)?.Source).endsWith('/resources/service/mamori-agent.exe'))!;
    expect(winsw.ServiceInstall).toMatchObject({ Name: 'MamoriAgent', Account: 'LocalSystem', Start: 'auto', Type: 'ownProcess' });
    expect(winsw.ServiceControl).toMatchObject({ Name: 'MamoriAgent', Start: 'install', Stop: 'both', Remove: 'uninstall', Wait: 'yes' });
    expect((product.Feature as Node).ComponentRef).toEqual([{ Id: 'MamoriDataFolder' }, { Id: 'MamoriTrayAutostart' }]);
    const tray = components.find((c) => c.Id === 'MamoriTrayAutostart')!;
    expect(tray.RegistryValue).toMatchObject({ Root: 'HKLM', Key: 'Software\\Microsoft\\Windows\\CurrentVersion\\Run', Name: 'Mamori', Value: '"[APPLICATIONFOLDER]Mamori.exe"' });
    const properties = Object.fromEntries((product.Property as Node[]).map((p) => [p.Id, p]));
    for (const p of ['COLLECTOR', 'TOKEN', 'SEGMENT', 'PUBKEY']) expect(properties[p]).toMatchObject({ Secure: 'yes' });
    expect(properties.TOKEN).toMatchObject({ Hidden: 'yes' });
    // Every scheduled action exists, runs as SYSTEM after the files it needs, and the release
    // runs only on a real uninstall.
    const actions = Object.fromEntries((product.CustomAction as Node[]).map((a) => [a.Id, a]));
    const sequence = (product.InstallExecuteSequence as Node[]).flatMap((s) => (s.Custom as Node[] | undefined) ?? []);
    for (const c of sequence.filter((c) => String(c.Action).startsWith('Mamori'))) {
      expect(actions[String(c.Action)], String(c.Action)).toMatchObject({ Execute: 'deferred', Impersonate: 'no' });
    }
    expect(Object.fromEntries(sequence.map((c) => [c.Action, c.After]))).toMatchObject({ MamoriProvision: 'InstallFiles', MamoriRelease: 'StopServices', MamoriServiceSecurity: 'MamoriServiceFailureFlag' });
    expect(sequence.find((c) => c.Action === 'MamoriRelease')!['#text']).toBe('REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE');
    expect(actions.MamoriProvision).toMatchObject({ Return: 'check', HideTarget: 'yes' });
  });

  it('the MSI hands the agent what the real CLI accepts, and a missing provision fails the install', async () => {
    const provision = CUSTOM_ACTIONS.find((a) => a.id === 'MamoriProvision')!.command;
    // cmd /d /s /c ""<mamori.cmd>" <args>": the part inside the outer quotes, split as Windows does.
    const inner = /\/c "(.*)"$/.exec(provision)![1]!;
    const data = path.join(dir, 'msi-data');
    const format = (props: Record<string, string>) =>
      inner
        .replace(/\[(\w+)\]/g, (_, p: string) => props[p] ?? '')
        .match(/"[^"]*"|\S+/g)!
        .map((t) => t.replace(/^"(.*)"$/, '$1'));
    const argv = (props: Record<string, string>) => format({ MAMORIDATADIR: `${data}/`, OriginalDatabase: path.join(dir, 'share', 'Mamori-0.1.0.msi'), ...props }).slice(1);

    const none = await mamori(argv({}));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('インストール設定がありません');
    const ok = await mamori(argv({ COLLECTOR: 'https://mamori.city.lg.jp:8765', TOKEN: 'enr_abcdefgh', SEGMENT: 'internet' }));
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(data, 'provision.json'), 'utf8'))).toEqual({ collectorUrl: 'https://mamori.city.lg.jp:8765', token: 'enr_abcdefgh', segment: 'internet' });
    expect(fs.readFileSync(path.join(data, 'install.log'), 'utf8')).toContain('agent provision failed: インストール設定がありません');
  });
});
