import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFINES, compileRecorder, compileWrapper, hasMakensis } from '../packaging/nsis/makensis';
import { ROOT, mamori, requireBuild } from './helpers';

// The NSIS installer logic (packaging/windows/installer.nsh) run for real under Wine: Debian's
// makensis builds it inside test/packaging/nsis/wrapper.nsi, which stands in for the script
// electron-builder generates, the way electron-builder builds it (an uninstaller-writer run
// first, then the installer embedding its output). Wine runs the installers, the registry and
// nsExec. What cannot run here is replaced by test/packaging/nsis/recorder.nsi, a real Windows
// program that records its command line and answers as told: Mamori.exe (Electron, which cannot
// be downloaded here) and WinSW (a .NET program; Wine has no .NET). The command line the
// installer gave Mamori.exe is then replayed to the real `mamori` CLI, and the real CLI's
// failure line is what the stand-in writes to install.log.

const WINE = '/usr/lib/wine/wine64';
const WINESERVER = '/usr/lib/wine/wineserver';
const hasWine = fs.existsSync(WINE) && fs.existsSync(WINESERVER);
const title =
  hasWine && hasMakensis
    ? 'the NSIS installer under Wine'
    : 'the NSIS installer under Wine (skipped: needs wine64 and nsis; `apt-get install -y --no-install-recommends wine64 nsis`, which .ci/run does)';

const INSTDIR = 'C:\\Program Files\\Mamori';
const RUN_KEY = 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run';
const UNINSTALL_KEY = `HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\${DEFINES.UNINSTALL_APP_KEY}`;

let dir = '';
let prefix = '';
let wineserver: ChildProcess | undefined;
const env = () => ({ ...process.env, WINEPREFIX: prefix, WINEDEBUG: '-all' });
const drive = (p: string) => path.join(prefix, 'drive_c', ...p.replace(/^C:\\/i, '').split('\\'));
/** A Unix path as Windows programs under Wine see it. */
const winPath = (p: string) => `Z:${p.replace(/\//g, '\\')}`;

function wine(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(WINE, args, { env: env(), encoding: 'utf8', timeout: 90_000 }, (err, stdout) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout }),
    );
  });
}

/** Values under a registry key, as Wine's reg.exe prints them (null when the key is missing). */
async function regValues(key: string): Promise<Record<string, string> | null> {
  const r = await wine(['reg', 'query', key]);
  if (r.code !== 0) return null;
  const out: Record<string, string> = {};
  for (const m of r.stdout.matchAll(/^\s{4}(\S.*?)\s{4}REG_\w+\s{4}(.*?)\r?$/gm)) out[m[1]!] = m[2]!;
  return out;
}

interface Call {
  exe: string;
  runAsNode: string;
  argv: string[];
}

/** Splits a Windows command line as CommandLineToArgvW (and Node on Windows) does. */
function splitCommandLine(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let arg = '';
    let quoted = false;
    for (; i < line.length; i++) {
      const c = line[i]!;
      if (c === '\\') {
        let n = 0;
        while (line[i + n] === '\\') n++;
        if (line[i + n] === '"') {
          arg += '\\'.repeat(Math.floor(n / 2));
          i += n;
          if (n % 2 === 1) arg += '"';
          else quoted = !quoted;
        } else {
          arg += '\\'.repeat(n);
          i += n - 1;
        }
      } else if (c === '"') {
        quoted = !quoted;
      } else if ((c === ' ' || c === '\t') && !quoted) {
        break;
      } else {
        arg += c;
      }
    }
    args.push(arg);
  }
  return args;
}

/** What the stand-ins were run with since the last reset. */
function calls(): Call[] {
  const file = drive('C:\\mamori-test\\calls.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf16le')
    .split('\r\n')
    .filter(Boolean)
    .map((l) => {
      const [exe, runAsNode, cmdline] = l.split('|');
      return { exe: path.win32.basename(exe!), runAsNode: runAsNode!, argv: splitCommandLine(cmdline!).slice(1) };
    });
}

/** Tells a stand-in how to answer: exit code, stdout, and the line it appends to install.log. */
function answer(exe: 'Mamori.exe' | 'mamori-agent.exe', reply: { code?: number; out?: string; log?: string } | null): void {
  const base = drive(`C:\\mamori-test\\${exe}`);
  for (const ext of ['code', 'out', 'log']) fs.rmSync(`${base}.${ext}`, { force: true });
  if (!reply) return;
  if (reply.code !== undefined) fs.writeFileSync(`${base}.code`, String(reply.code));
  if (reply.out !== undefined) fs.writeFileSync(`${base}.out`, reply.out);
  if (reply.log !== undefined) fs.writeFileSync(`${base}.log`, reply.log);
}

function resetCalls(): void {
  fs.rmSync(drive('C:\\mamori-test\\calls.log'), { force: true });
}

const installLog = () =>
  fs.existsSync(drive('C:\\ProgramData\\Mamori\\install.log')) ? fs.readFileSync(drive('C:\\ProgramData\\Mamori\\install.log'), 'utf8') : '';
const setup = () => winPath(path.join(dir, 'share', 'Mamori-Setup-0.1.0.exe'));
/**
 * The uninstall command line IT runs (docs/deploy.*.md), from a batch file: `_?=` must come last
 * and unquoted, which an argument list cannot express, and it makes the uninstaller run in place,
 * so the exit code is the uninstall's own.
 */
function uninstall(...args: string[]) {
  const bat = 'C:\\mamori-test\\uninstall.bat';
  fs.writeFileSync(drive(bat), `@echo off\r\n"${INSTDIR}\\Uninstall Mamori.exe" /S /allusers ${args.join(' ')} _?=${INSTDIR}\r\nexit /b %ERRORLEVEL%\r\n`);
  return wine(['cmd', '/c', bat]);
}

/**
 * Replays an agent command the installer ran to the real CLI, with Windows paths mapped to this
 * machine: the data directory to `data`, Z: paths to their Unix paths.
 */
async function replay(call: Call, data: string) {
  const argv = call.argv
    .slice(1)
    .map((a) =>
      a === 'C:\\ProgramData\\Mamori'
        ? data
        : a === 'C:\\ProgramData\\Mamori\\install.log'
          ? path.join(data, 'install.log')
          : a.startsWith('Z:\\')
            ? a.slice(2).replace(/\\/g, '/')
            : a,
    );
  expect(call.argv[0]).toBe(`${INSTDIR}\\resources\\app.asar\\bin\\mamori.js`);
  return mamori(argv);
}

describe.skipIf(!hasWine || !hasMakensis)(title, () => {
  beforeAll(() => {
    requireBuild();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-nsis-wine-'));
    prefix = path.join(dir, 'prefix');
    // The first call creates the prefix (several seconds); a persistent wineserver keeps the rest quick.
    execFileSync(WINE, ['reg', 'query', 'HKLM\\Software'], { env: env(), stdio: 'ignore' });
    wineserver = spawn(WINESERVER, ['-p', '-f'], { env: env(), stdio: 'ignore' });

    // The installed files: the layout electron-builder's win-unpacked has (test/e2e/packaging.test.ts
    // checks it), with the stand-ins for Mamori.exe and WinSW.
    const app = path.join(dir, 'app');
    fs.mkdirSync(path.join(app, 'resources', 'service'), { recursive: true });
    fs.mkdirSync(path.join(app, 'resources', 'app.asar', 'bin'), { recursive: true });
    compileRecorder(path.join(dir, 'recorder.exe'));
    fs.copyFileSync(path.join(dir, 'recorder.exe'), path.join(app, 'Mamori.exe'));
    fs.copyFileSync(path.join(dir, 'recorder.exe'), path.join(app, 'resources', 'service', 'mamori-agent.exe'));
    fs.copyFileSync(path.join(ROOT, 'packaging', 'windows', 'mamori-agent.xml'), path.join(app, 'resources', 'service', 'mamori-agent.xml'));
    fs.copyFileSync(path.join(ROOT, 'packaging', 'windows', 'mamori.cmd'), path.join(app, 'resources', 'mamori.cmd'));
    fs.writeFileSync(path.join(app, 'resources', 'app.asar', 'bin', 'mamori.js'), '// stand-in\n');

    const writer = path.join(dir, 'uninstaller-writer.exe');
    compileWrapper({ out: writer, uninstaller: true, uninstallerFile: winPath(path.join(dir, 'uninstaller.exe')), target: 'amd64-unicode', wineRun: true });
    execFileSync(WINE, [writer], { env: env(), stdio: 'ignore' });
    fs.mkdirSync(path.join(dir, 'share'));
    compileWrapper({
      out: path.join(dir, 'share', 'Mamori-Setup-0.1.0.exe'),
      uninstallerFile: path.join(dir, 'uninstaller.exe'),
      appDir: app,
      target: 'amd64-unicode',
      wineRun: true,
    });
    fs.mkdirSync(drive('C:\\mamori-test'), { recursive: true });
  }, 120_000);

  afterAll(async () => {
    if (wineserver) {
      await new Promise((r) => execFile(WINESERVER, ['-k'], { env: env() }, r));
      wineserver.kill();
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('a silent install with a bad provision exits 2, logs the agent message, and leaves nothing installed', async () => {
    // The real CLI's answer to these arguments, as the stand-in gives it back.
    const real = path.join(dir, 'real-bad');
    const bad = await mamori([
      'agent',
      'provision',
      '--data-dir',
      real,
      '--log',
      path.join(real, 'install.log'),
      '--',
      '/S',
      '/COLLECTOR=https://mamori.city.lg.jp:8765',
      '/TOKEN=enr_abcdefgh',
      '/SEGMENT=kokuho',
    ]);
    expect(bad.code).toBe(2);
    answer('Mamori.exe', { code: 2, out: bad.stderr, log: fs.readFileSync(path.join(real, 'install.log')).toString('utf8').replace(/\n/g, '\r\n') });
    resetCalls();

    const r = await wine([setup(), '/S', '/COLLECTOR=https://mamori.city.lg.jp:8765', '/TOKEN=enr_abcdefgh', '/SEGMENT=kokuho']);
    expect(r.code).toBe(2);
    expect(calls().map((c) => `${c.exe} ${c.argv[1] ?? c.argv[0]}`)).toEqual(['Mamori.exe agent']);
    // The installer's own line carries the agent's message, decoded from UTF-8 (nsExec alone
    // would have decoded it with the ANSI code page).
    expect(installLog()).toMatch(
      /\[Mamori-Setup 0\.1\.0\] インストールを中止しました \/ installation aborted \(exit 2\): agent provision failed: インストール設定（プロビジョニング）が不正です: SEGMENT（区分）は mynumber・lgwan・internet のいずれかにしてください \/ invalid provisioning: segment: /,
    );
    expect(fs.existsSync(drive(INSTDIR))).toBe(false);
    expect(await regValues(UNINSTALL_KEY)).toBeNull();
    expect((await regValues(RUN_KEY))?.Mamori).toBeUndefined();
  });

  it('a silent install with no provision at all fails too, with the message that says how to give one', async () => {
    const real = path.join(dir, 'real-none');
    const none = await mamori(['agent', 'provision', '--data-dir', real, '--beside', dir, '--log', path.join(real, 'install.log'), '--', '/S']);
    expect(none.code).toBe(2);
    answer('Mamori.exe', { code: 2, out: none.stderr, log: fs.readFileSync(path.join(real, 'install.log'), 'utf8') });
    const r = await wine([setup(), '/S']);
    expect(r.code).toBe(2);
    expect(installLog()).toMatch(
      /installation aborted \(exit 2\): agent provision failed: インストール設定がありません。COLLECTOR・TOKEN・SEGMENT を指定するか/,
    );
    expect(fs.existsSync(drive(INSTDIR))).toBe(false);
  });

  it('a silent install provisions through the agent, registers and starts the service, and starts the tray at logon', async () => {
    answer('Mamori.exe', null);
    resetCalls();
    const r = await wine([setup(), '/S', '/COLLECTOR=https://mamori.city.lg.jp:8765', '/TOKEN=enr_abcdefgh', '/SEGMENT=lgwan']);
    expect(r.code).toBe(0);

    const [provision, install, start, ...rest] = calls();
    expect(rest).toEqual([]);
    expect(provision).toMatchObject({ exe: 'Mamori.exe', runAsNode: '1' });
    expect(provision!.argv.slice(1, 9)).toEqual([
      'agent',
      'provision',
      '--data-dir',
      'C:\\ProgramData\\Mamori',
      '--beside',
      setup(),
      '--log',
      'C:\\ProgramData\\Mamori\\install.log',
    ]);
    // WinSW runs as a plain Windows program: ELECTRON_RUN_AS_NODE is for Mamori.exe only.
    expect(install).toEqual({ exe: 'mamori-agent.exe', runAsNode: '', argv: ['install'] });
    expect(start).toEqual({ exe: 'mamori-agent.exe', runAsNode: '', argv: ['start'] });

    // What the installer handed the agent, given to the real CLI, is a valid provision.
    const data = path.join(dir, 'real-good');
    const replayed = await replay(provision!, data);
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(data, 'provision.json'), 'utf8'))).toEqual({
      collectorUrl: 'https://mamori.city.lg.jp:8765',
      token: 'enr_abcdefgh',
      segment: 'lgwan',
    });

    expect((await regValues(RUN_KEY))?.Mamori).toBe(`"${INSTDIR}\\Mamori.exe"`);
    expect(await regValues(UNINSTALL_KEY)).toMatchObject({ QuietUninstallString: `"${INSTDIR}\\Uninstall Mamori.exe" /allusers /S` });
    expect(fs.existsSync(drive('C:\\ProgramData\\Mamori\\logs'))).toBe(true);
    expect(installLog()).toMatch(/installed: service MamoriAgent running, tray at logon/);
  });

  it('hands the agent a mamori-provision.json beside the installer, and the real CLI reads it', async () => {
    fs.writeFileSync(
      path.join(dir, 'share', 'mamori-provision.json'),
      `\uFEFF${JSON.stringify({ collectorUrl: 'https://mamori.city.lg.jp:8765', token: 'enr_fromfile', segment: 'mynumber' })}`,
    );
    resetCalls();
    expect((await wine([setup(), '/S'])).code).toBe(0);
    const provision = calls().find((c) => c.exe === 'Mamori.exe')!;
    const data = path.join(dir, 'real-file');
    expect((await replay(provision, data)).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(data, 'provision.json'), 'utf8'))).toMatchObject({ token: 'enr_fromfile', segment: 'mynumber' });
    fs.rmSync(path.join(dir, 'share', 'mamori-provision.json'));
  });

  it('an upgrade neither releases nor removes the service, and keeps the data and the tray', async () => {
    resetCalls();
    // The enrolled terminal: the agent answers "already enrolled" and exits 0.
    const r = await wine([setup(), '/S', '/COLLECTOR=https://mamori.city.lg.jp:8765', '/TOKEN=enr_spent000', '/SEGMENT=lgwan']);
    expect(r.code).toBe(0);
    expect(calls().some((c) => c.argv.includes('release') || (c.exe === 'mamori-agent.exe' && c.argv[0] === 'uninstall'))).toBe(false);
    expect(
      calls()
        .filter((c) => c.exe === 'mamori-agent.exe')
        .map((c) => c.argv[0]),
    ).toContain('start');
    expect((await regValues(RUN_KEY))?.Mamori).toBe(`"${INSTDIR}\\Mamori.exe"`);
    expect(installLog()).toMatch(/install to C:\\Program Files\\Mamori \(upgrade: 1\)/);
  });

  it('an uninstall whose release fails is aborted with exit 5 and the service is started again', async () => {
    answer('Mamori.exe', {
      code: 1,
      out: 'mamori: not all controls could be restored\r\n',
      log: '2026-11-25T00:00:00.000Z agent release: could not restore: reg delete HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices\\Deny_All exited 5\r\n',
    });
    resetCalls();
    const r = await uninstall();
    expect(r.code).toBe(5);
    expect(calls().map((c) => (c.exe === 'Mamori.exe' ? `agent ${c.argv[2]}` : `winsw ${c.argv[0]}`))).toEqual(['agent release', 'winsw start']);
    expect(installLog()).toMatch(/アンインストールを中止しました \/ uninstall aborted \(exit 5\): agent release: could not restore: reg delete/);
    expect(fs.existsSync(drive(`${INSTDIR}\\Mamori.exe`))).toBe(true);
    expect((await regValues(RUN_KEY))?.Mamori).toBeDefined();
    answer('Mamori.exe', null);
  });

  it('an uninstall gives the OS controls back, removes the service and the tray autostart, and keeps the local log', async () => {
    resetCalls();
    const r = await uninstall();
    expect(r.code).toBe(0);
    const [release, remove, ...rest] = calls();
    expect(rest).toEqual([]);
    expect(release).toMatchObject({ exe: 'Mamori.exe', runAsNode: '1' });
    expect(release!.argv.slice(1)).toEqual(['agent', 'release', '--data-dir', 'C:\\ProgramData\\Mamori', '--log', 'C:\\ProgramData\\Mamori\\install.log']);
    expect(remove).toEqual({ exe: 'mamori-agent.exe', runAsNode: '', argv: ['uninstall'] });
    expect((await regValues(RUN_KEY))?.Mamori).toBeUndefined();
    expect(await regValues(UNINSTALL_KEY)).toBeNull();
    expect(installLog()).toMatch(/uninstalled: service removed, OS controls restored, data kept in C:\\ProgramData\\Mamori/);
    expect(fs.existsSync(drive('C:\\ProgramData\\Mamori\\install.log'))).toBe(true);
  });

  it('/PURGE removes the local data as well', async () => {
    expect((await wine([setup(), '/S', '/COLLECTOR=https://mamori.city.lg.jp:8765', '/TOKEN=enr_abcdefgh', '/SEGMENT=lgwan'])).code).toBe(0);
    expect((await uninstall('/PURGE')).code).toBe(0);
    expect(fs.existsSync(drive('C:\\ProgramData\\Mamori'))).toBe(false);
  });
});
