import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Compiling packaging/windows/installer.nsh with Debian's makensis inside wrapper.nsi. */

export const ROOT = path.resolve(__dirname, '../../..');
export const MAKENSIS = '/usr/bin/makensis';
export const hasMakensis = fs.existsSync(MAKENSIS);
/** electron-builder's NSIS includes (getProcessInfo.nsh, allowOnlyOneInstallerInstance.nsh, …). */
export const EB_INCLUDE = path.join(ROOT, 'node_modules', 'app-builder-lib', 'templates', 'nsis', 'include');

/**
 * What electron-builder defines for Mamori (NsisTarget: from appId and productName; the GUID is
 * UUID v5 of the appId, which test/packaging/docs.test.ts checks against electron-builder's).
 */
export const DEFINES = {
  PRODUCT_NAME: 'Mamori',
  PRODUCT_FILENAME: 'Mamori',
  APP_FILENAME: 'Mamori',
  APP_GUID: '14be5b2a-2b5c-5d21-97a4-6af9a011462c',
  UNINSTALL_APP_KEY: '14be5b2a-2b5c-5d21-97a4-6af9a011462c',
  VERSION: '0.1.0',
};

export interface CompileOptions {
  out: string;
  /** BUILD_UNINSTALLER: the uninstaller-writer electron-builder builds first. */
  uninstaller?: boolean;
  /** Where the uninstaller is written (writer) or read from (installer). */
  uninstallerFile: string;
  /** The files to install (installer only). */
  appDir?: string;
  /** `amd64-unicode` for Wine (Debian's wine64 runs no 32-bit code); electron-builder ships x86-unicode. */
  target?: 'x86-unicode' | 'amd64-unicode';
  /** Stand in for electron-builder's app check, whose tasklist and findstr are stubs under Wine. */
  wineRun?: boolean;
}

/**
 * Compiles the wrapper with warnings as errors, as electron-builder runs makensis (-WX).
 * @returns makensis's output
 * @throws Error with makensis's output when it fails
 */
export function compileWrapper(opts: CompileOptions): string {
  const args = [`-XTarget ${opts.target ?? 'x86-unicode'}`, '-WX', '-V2', '-INPUTCHARSET', 'UTF8'];
  for (const [k, v] of Object.entries(DEFINES)) args.push(`-D${k}=${v}`);
  args.push(
    `-DEB_INCLUDE=${EB_INCLUDE}`,
    `-DMAMORI_INCLUDE=${path.join(ROOT, 'packaging', 'windows')}`,
    `-DOUT_FILE=${opts.out}`,
    `-DUNINSTALLER_OUT_FILE=${opts.uninstallerFile}`,
  );
  if (opts.uninstaller) args.push('-DBUILD_UNINSTALLER');
  if (opts.appDir) args.push(`-DAPP_DIR=${opts.appDir}`);
  if (opts.wineRun) args.push('-DMAMORI_WINE_RUN');
  args.push(path.join(__dirname, 'wrapper.nsi'));
  const r = spawnSync(MAKENSIS, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`makensis failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

/** Compiles the recorder (recorder.nsi) that stands in for Mamori.exe and WinSW under Wine. */
export function compileRecorder(out: string): void {
  const r = spawnSync(MAKENSIS, ['-XTarget amd64-unicode', '-WX', '-V2', `-DOUT_FILE=${out}`, path.join(__dirname, 'recorder.nsi')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`makensis failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
}
