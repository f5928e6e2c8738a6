'use strict';
// `npm run package:dir`: electron-builder's `--linux dir` and `--win dir` builds on a closed
// network, with a stand-in Electron (scripts/electron-standin.js) and no dependency rebuild, so
// nothing is downloaded. The result is what the deb and the NSIS/MSI installers would pack:
// <output>/linux-unpacked and <output>/win-unpacked. Run `npm run build` first (package:dir does).
//
//   node scripts/package-dir.js [--linux] [--win] [--output DIR]     (both platforms by default)
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { createElectronStandin } = require('./electron-standin');

const ROOT = path.join(__dirname, '..');

/**
 * Runs electron-builder's dir target for each platform with a stand-in Electron.
 * @param {{ platforms: ('linux' | 'win32')[], output: string, log?: (line: string) => void }} opts
 * @returns {Record<string, string>} the unpacked app directory of each platform
 * @throws Error with electron-builder's output when a build fails
 */
function packageDir(opts) {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const cli = require.resolve('electron-builder/cli.js');
  const out = {};
  for (const platform of opts.platforms) {
    const flag = platform === 'win32' ? '--win' : '--linux';
    const standin = createElectronStandin(path.join(opts.output, '.electron-standin', platform), platform);
    opts.log?.(`electron-builder ${flag} dir (stand-in Electron in ${standin})`);
    const r = spawnSync(
      process.execPath,
      [cli, flag, 'dir', '--x64', `--config.electronDist=${standin}`, '--config.npmRebuild=false', `--config.directories.output=${opts.output}`],
      { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    if (r.status !== 0) throw new Error(`electron-builder ${flag} dir failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    out[platform] = path.join(opts.output, platform === 'win32' ? 'win-unpacked' : 'linux-unpacked');
  }
  return out;
}

module.exports = { packageDir };

if (require.main === module) {
  const args = process.argv.slice(2);
  const platforms = [];
  if (args.includes('--linux')) platforms.push('linux');
  if (args.includes('--win')) platforms.push('win32');
  const o = args.indexOf('--output');
  const output = path.resolve(o >= 0 ? args[o + 1] : path.join(ROOT, 'release'));
  try {
    const dirs = packageDir({ platforms: platforms.length ? platforms : ['linux', 'win32'], output, log: (l) => process.stdout.write(`${l}\n`) });
    for (const dir of Object.values(dirs)) process.stdout.write(`${dir}\n`);
  } catch (err) {
    process.stderr.write(`package-dir: ${err.message}\n`);
    process.exit(1);
  }
}
