import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendInstallLog, provisionFile, provisionFromInstaller } from '../../src/agent/provision';
import { saveEnrollment } from '../../src/agent/policy';
import { openEventStore } from '../../src/agent/store';
import { storeFile } from '../../src/agent/paths';
import { UsageError, parseProvision, provisionFromArgs } from '../../src/shared';

const URL_ = 'https://mamori.city.lg.jp:8765';
const KEY = `MCowBQYDK2VwAyEA${'A'.repeat(43)}=`;

describe('installer arguments', () => {
  it('reads what an NSIS command line gives, whatever else is on it', () => {
    // As Windows splits `Mamori-Setup.exe /S /COLLECTOR=… /TOKEN=… /SEGMENT=lgwan /D=C:\Program Files\Mamori`,
    // with electron-builder's own switches too.
    const args = ['/S', `/COLLECTOR=${URL_}`, '/TOKEN=enr_abcdefgh', '/SEGMENT=lgwan', '--updated', '/D=C:\\Program', 'Files\\Mamori'];
    expect(provisionFromArgs(args)).toEqual({ collectorUrl: URL_, token: 'enr_abcdefgh', segment: 'lgwan' });
  });

  it('reads MSI properties and ignores the empty ones an MSI passes for properties nobody set', () => {
    expect(provisionFromArgs([`COLLECTOR=${URL_}`, 'TOKEN=enr_abcdefgh', 'SEGMENT=mynumber', 'PUBKEY='])).toEqual({
      collectorUrl: URL_,
      token: 'enr_abcdefgh',
      segment: 'mynumber',
    });
    expect(provisionFromArgs(['COLLECTOR=', 'TOKEN=', 'SEGMENT=', 'PUBKEY='])).toEqual({});
  });

  it('takes keys in any case and strips quotes and blanks around values', () => {
    expect(provisionFromArgs(['/collector="https://c.lg.jp:8765"', ' /Token= enr_12345678 ', `/pubkey=${KEY}`])).toEqual({
      collectorUrl: 'https://c.lg.jp:8765',
      token: 'enr_12345678',
      collectorPublicKey: KEY,
    });
  });
});

describe('provision validation', () => {
  it('names every problem once, in Japanese then English, on one line', () => {
    let message = '';
    try {
      parseProvision({ collectorUrl: 'collector.city.lg.jp', segment: 'kokuho' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n')).toHaveLength(1);
    const [ja, en] = message.split(' / invalid provisioning: ');
    expect(ja).toContain('インストール設定（プロビジョニング）が不正です');
    expect(ja).toContain('COLLECTOR（コレクターの URL）は https:// で始まる URL');
    expect(ja).toContain('TOKEN（登録トークン）がありません');
    expect(ja).toContain('SEGMENT（区分）は mynumber・lgwan・internet');
    expect(en).toMatch(/collectorUrl: .*; token: missing \(TOKEN\); segment: /);
  });

  it('refuses other schemes, unknown fields and a bad key, and accepts a complete provision', () => {
    expect(() => parseProvision({ collectorUrl: 'ftp://x.lg.jp', token: 'enr_12345678', segment: 'lgwan' })).toThrow(/https/);
    expect(() => parseProvision({ collectorUrl: URL_, token: 'enr_12345678', segment: 'lgwan', colector: 'x' })).toThrow(/不明な項目があります: colector/);
    expect(() => parseProvision({ collectorUrl: URL_, token: 'enr_12345678', segment: 'lgwan', collectorPublicKey: 'short' })).toThrow(/PUBKEY/);
    expect(parseProvision({ collectorUrl: ` ${URL_} `, token: 'enr_12345678', segment: 'internet', collectorPublicKey: KEY })).toEqual({
      collectorUrl: URL_,
      token: 'enr_12345678',
      segment: 'internet',
      collectorPublicKey: KEY,
    });
  });
});

describe('provisioning from an installer', () => {
  let dir: string;
  let data: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-provision-'));
    data = path.join(dir, 'ProgramData', 'Mamori');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const stored = () => JSON.parse(fs.readFileSync(provisionFile(data), 'utf8')) as Record<string, unknown>;
  const writeBeside = (name: string, body: string) => {
    fs.mkdirSync(path.join(dir, 'share'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'share', name), body);
  };

  it('stores a valid provision for the first start, readable by the service only', () => {
    const r = provisionFromInstaller({ dataDir: data, args: ['/S', `/COLLECTOR=${URL_}`, '/TOKEN=enr_abcdefgh', '/SEGMENT=lgwan', `/PUBKEY=${KEY}`] });
    expect(r.outcome).toBe('stored');
    expect(r.message).toMatch(/^インストール設定を保存しました.*公開鍵を固定.* \/ provisioned: .*collector key pinned/);
    expect(stored()).toEqual({ collectorUrl: URL_, token: 'enr_abcdefgh', segment: 'lgwan', collectorPublicKey: KEY });
    if (process.platform !== 'win32') expect(fs.statSync(provisionFile(data)).mode & 0o777).toBe(0o600);
  });

  it('reads a mamori-provision.json beside the installer, saved by Notepad with a BOM, and lets the command line win', () => {
    writeBeside('mamori-provision.json', `\uFEFF${JSON.stringify({ collectorUrl: URL_, token: 'enr_fromfile1', segment: 'mynumber' })}`);
    const installer = path.join(dir, 'share', 'Mamori-Setup-0.1.0.exe');
    expect(provisionFromInstaller({ dataDir: data, beside: installer, args: ['/S'] }).outcome).toBe('stored');
    expect(stored()).toMatchObject({ token: 'enr_fromfile1', segment: 'mynumber' });
    // The folder works as well as the installer's path, and the command line overrides the file.
    provisionFromInstaller({ dataDir: data, beside: path.join(dir, 'share'), args: ['/TOKEN=enr_fromargs2'] });
    expect(stored()).toMatchObject({ token: 'enr_fromargs2', segment: 'mynumber', collectorUrl: URL_ });
  });

  it('refuses a bad provision with the installer message and stores nothing', () => {
    writeBeside('mamori-provision.json', JSON.stringify({ collectorUrl: URL_, token: 'enr_abcdefgh', segment: 'kokuho' }));
    expect(() => provisionFromInstaller({ dataDir: data, beside: path.join(dir, 'share'), args: [] })).toThrow(UsageError);
    expect(() => provisionFromInstaller({ dataDir: data, beside: path.join(dir, 'share'), args: [] })).toThrow(
      /SEGMENT（区分）.* \/ invalid provisioning: segment/,
    );
    expect(fs.existsSync(provisionFile(data))).toBe(false);
  });

  it('says which file it cannot read', () => {
    writeBeside('mamori-provision.json', '{"collectorUrl": ');
    expect(() => provisionFromInstaller({ dataDir: data, beside: path.join(dir, 'share'), args: [] })).toThrow(
      /mamori-provision\.json を読めません.* \/ cannot read .*mamori-provision\.json/,
    );
    expect(() => provisionFromInstaller({ dataDir: data, file: path.join(dir, 'nowhere.json'), args: [] })).toThrow(/ENOENT/);
  });

  it('fails a fresh install that was given no provision at all', () => {
    expect(() => provisionFromInstaller({ dataDir: data, beside: path.join(dir, 'share'), args: ['/S'] })).toThrow(
      /^インストール設定がありません。.* \/ no provisioning: pass COLLECTOR, TOKEN and SEGMENT, or put a mamori-provision\.json beside the installer$/,
    );
  });

  it('keeps a provision still waiting when a later install (a repair, an upgrade) passes none', () => {
    provisionFromInstaller({ dataDir: data, args: [`/COLLECTOR=${URL_}`, '/TOKEN=enr_abcdefgh', '/SEGMENT=lgwan'] });
    const again = provisionFromInstaller({ dataDir: data, args: ['/S'] });
    expect(again.outcome).toBe('pending');
    expect(again.message).toContain('前回のインストール設定');
    expect(stored()).toMatchObject({ token: 'enr_abcdefgh' });
  });

  it('leaves an enrolled terminal as it is on an upgrade, and leaves no spent token on disk', () => {
    const store = openEventStore(storeFile(data));
    saveEnrollment(store, {
      collectorUrl: URL_,
      agentId: 'agt_0001',
      agentToken: 't',
      segment: 'mynumber',
      collectorPublicKey: KEY,
      unlockSecret: 's',
      enrolledAt: '2026-11-24T00:00:00.000Z',
    });
    store.close();
    // The original command line again, its token long spent, and even a different segment.
    const r = provisionFromInstaller({ dataDir: data, args: ['/S', `/COLLECTOR=${URL_}`, '/TOKEN=enr_spent000', '/SEGMENT=lgwan'] });
    expect(r.outcome).toBe('enrolled');
    expect(r.message).toMatch(/この端末は登録済みです（agt_0001、区分 mynumber/);
    expect(fs.existsSync(provisionFile(data))).toBe(false);
    // An invalid one is not a reason to fail the upgrade of a protected terminal either.
    expect(provisionFromInstaller({ dataDir: data, args: ['/SEGMENT=kokuho'] }).outcome).toBe('enrolled');
  });

  it('appends installer outcomes to the log as UTF-8 lines', () => {
    const log = path.join(data, 'install.log');
    appendInstallLog(log, 'agent provision: 保存しました / stored');
    appendInstallLog(log, 'second');
    const lines = fs.readFileSync(log, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z agent provision: 保存しました \/ stored$/);
  });
});
