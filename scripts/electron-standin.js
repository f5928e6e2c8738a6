'use strict';
// A stand-in Electron distribution, for `electron-builder --linux dir` and `--win dir` where the
// Electron binary cannot be downloaded (../shared/BUILD-NOTES.md, "Packaging without downloads").
// electron-builder copies it as it would Electron's own zip, so it has the same shape: the
// executable (`electron`, or a real PE file as `electron.exe`: electron-builder rewrites its
// resources), `version`, `LICENSE`, `LICENSES.chromium.html`, `locales/`, `resources/`.
//
// The Linux `electron` is a script that behaves like Electron under ELECTRON_RUN_AS_NODE=1, the
// only way the agent service and the `mamori` command run it: it executes this machine's Node.
// Without that variable it says the tray needs the real Electron binary and exits 1. It cannot
// read app.asar as Electron can; tests run it on the extracted archive.
//
//   node scripts/electron-standin.js --platform linux|win32 OUTDIR
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

/** The Electron version electron-builder packages for (node_modules/electron). */
function electronVersion() {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'electron', 'package.json'), 'utf8')).version;
}

/**
 * Writes a stand-in Electron distribution for `platform` into `dir` (replacing what is there).
 * @param {string} dir
 * @param {'linux' | 'win32'} platform
 * @param {{ node?: string }} [opts] the Node binary the Linux stand-in runs (this one by default)
 * @returns {string} dir
 */
function createElectronStandin(dir, platform, opts = {}) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'locales'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'resources'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'version'), electronVersion());
  fs.writeFileSync(path.join(dir, 'LICENSE'), 'Stand-in for the Electron distribution (scripts/electron-standin.js); not for release.\n');
  fs.writeFileSync(path.join(dir, 'LICENSES.chromium.html'), '<!doctype html><title>stand-in</title>\n');
  fs.writeFileSync(path.join(dir, 'locales', 'en-US.pak'), '');
  fs.writeFileSync(path.join(dir, 'locales', 'ja.pak'), '');
  if (platform === 'win32') {
    // Any valid PE image will do for electron-builder's resource editing; WinSW is one we ship.
    fs.copyFileSync(path.join(ROOT, 'node_modules', 'node-windows', 'bin', 'winsw', 'winsw.exe'), path.join(dir, 'electron.exe'));
  } else if (platform === 'linux') {
    const node = opts.node ?? process.execPath;
    const script = [
      '#!/bin/sh',
      '# Stand-in Electron (scripts/electron-standin.js): Node under ELECTRON_RUN_AS_NODE=1.',
      'if [ "$ELECTRON_RUN_AS_NODE" = 1 ]; then',
      `  exec '${node.replace(/'/g, "'\\''")}' "$@"`,
      'fi',
      'echo "stand-in Electron: the tray needs the real Electron binary (npm install on a connected machine)" >&2',
      'exit 1',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'electron'), script, { mode: 0o755 });
    // The setuid sandbox helper the deb's postinst chmods.
    fs.writeFileSync(path.join(dir, 'chrome-sandbox'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  } else {
    throw new Error(`no stand-in Electron for ${platform}`);
  }
  return dir;
}

module.exports = { createElectronStandin, electronVersion };

if (require.main === module) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--platform');
  const platform = i >= 0 ? args.splice(i, 2)[1] : process.platform;
  if (args.length !== 1 || (platform !== 'linux' && platform !== 'win32')) {
    process.stderr.write('usage: node scripts/electron-standin.js --platform linux|win32 OUTDIR\n');
    process.exit(2);
  }
  process.stdout.write(`${createElectronStandin(path.resolve(args[0]), platform)}\n`);
}
