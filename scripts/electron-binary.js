'use strict';
// The root `postinstall`: fetch the Electron binary the tray runs on, if it can be fetched.
//
// package.json's `allowScripts` denies electron's own postinstall, which exits 1 when the download
// fails and so fails `npm ci` on a closed network. This runs the same download (electron's
// install.js, which honours ELECTRON_SKIP_BINARY_DOWNLOAD, ELECTRON_MIRROR and the cache) and, when
// it fails, says what that means and lets the install succeed: everything but the tray window
// works without the binary, and `npm start` says the tray was not started.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

function main() {
  let installer;
  try {
    installer = path.join(path.dirname(require.resolve('electron/package.json')), 'install.js');
  } catch {
    return 0; // `npm ci --omit=dev`: no electron package, no tray on this machine.
  }
  const result = spawnSync(process.execPath, [installer], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
  if (result.status === 0) return 0;
  const reason =
    (result.stderr || '')
      .split('\n')
      .find((line) => /error/i.test(line))
      ?.trim() ?? `exit ${result.status}`;
  process.stderr.write(
    `mamori: the Electron binary could not be downloaded (${reason.slice(0, 200)}).\n` +
      'mamori: everything but the tray window works; on a connected machine, `node node_modules/electron/install.js` fetches it.\n',
  );
  return 0;
}

process.exitCode = main();
