import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileWrapper, hasMakensis } from './nsis/makensis';

// packaging/windows/installer.nsh compiled by Debian's makensis inside test/packaging/nsis/wrapper.nsi,
// which stands in for electron-builder's script and includes electron-builder's own app check.
// electron-builder compiles twice, with warnings as errors: the uninstaller-writer
// (BUILD_UNINSTALLER), then the installer. The Wine run is test/e2e/installer-windows.test.ts.

const title = hasMakensis
  ? "the NSIS include compiles in electron-builder's two builds"
  : "the NSIS include compiles in electron-builder's two builds (skipped: makensis is not installed; `apt-get install -y nsis`, which .ci/run does)";

describe.skipIf(!hasMakensis)(title, () => {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-nsis-'));
    fs.mkdirSync(path.join(dir, 'app', 'resources', 'service'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'app', 'Mamori.exe'), 'stand-in');
    fs.writeFileSync(path.join(dir, 'uninstaller.exe'), 'stand-in');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('as the uninstaller-writer, with the uninstall macros and without the install ones', () => {
    compileWrapper({ out: path.join(dir, 'writer.exe'), uninstaller: true, uninstallerFile: path.join(dir, 'u.exe') });
    expect(fs.readFileSync(path.join(dir, 'writer.exe')).subarray(0, 2).toString()).toBe('MZ');
  });

  it('as the installer, embedding the app and the uninstaller', () => {
    compileWrapper({ out: path.join(dir, 'Mamori-Setup-0.1.0.exe'), uninstallerFile: path.join(dir, 'uninstaller.exe'), appDir: path.join(dir, 'app') });
    expect(fs.statSync(path.join(dir, 'Mamori-Setup-0.1.0.exe')).size).toBeGreaterThan(50_000);
  });

  it('for 64-bit Wine too, with the stand-in app check', () => {
    compileWrapper({
      out: path.join(dir, 'Mamori-Setup-0.1.0-x64.exe'),
      uninstallerFile: path.join(dir, 'uninstaller.exe'),
      appDir: path.join(dir, 'app'),
      target: 'amd64-unicode',
      wineRun: true,
    });
    compileWrapper({
      out: path.join(dir, 'writer64.exe'),
      uninstaller: true,
      uninstallerFile: path.join(dir, 'u.exe'),
      target: 'amd64-unicode',
      wineRun: true,
    });
  });
});
