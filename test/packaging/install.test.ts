import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// `npm ci` on a machine that cannot download Electron's binary (a closed network) must succeed:
// electron's own postinstall exits 1 there, so package.json denies it and the root postinstall
// runs the same download, tolerating its failure.

const ROOT = path.join(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; allowScripts: Record<string, boolean> };

describe('npm ci without the Electron download', () => {
  it('denies electron its postinstall and runs ours instead', () => {
    expect(pkg.allowScripts.electron).toBe(false);
    expect(pkg.scripts.postinstall).toBe('node scripts/electron-binary.js');
  });

  it('names every locked package that has an install script, so none is skipped silently', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages)
      // '' is this project, whose own postinstall is scripts/electron-binary.js.
      .filter(([where, p]) => where !== '' && p.hasInstallScript)
      .map(([where]) => where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts).toContain('better-sqlite3');
    expect(withScripts.filter((name) => !(name in pkg.allowScripts))).toEqual([]);
  });

  it('succeeds when the download fails, and says what that means', () => {
    // A mirror on a port nothing listens on: the download fails at once, as on a closed network.
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'electron-binary.js')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        ELECTRON_MIRROR: 'http://127.0.0.1:9/',
        ELECTRON_SKIP_BINARY_DOWNLOAD: '',
        electron_config_cache: fs.mkdtempSync('/tmp/mamori-electron-cache-'),
      },
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('the Electron binary could not be downloaded');
    expect(r.stderr).toContain('everything but the tray window works');
  });
});
