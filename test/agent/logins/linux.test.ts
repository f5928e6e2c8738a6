import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { READ_RECORDS, UTMP_RECORD_SIZE, createLinuxLoginSource, decodeUtmp, type LoginPass } from '../../../src/agent/logins';

const FIXTURES = path.resolve(__dirname, '../../fixtures/linux/utmp');
let root: string;
let state: Map<string, string>;
const logDir = () => path.join(root, 'var', 'log');

/** A real wtmp/btmp made by util-linux from a text dump. */
function utmpFile(dumpName: string): Buffer {
  return execFileSync('utmpdump', ['-r'], { input: fs.readFileSync(path.join(FIXTURES, dumpName)), stdio: ['pipe', 'pipe', 'ignore'] });
}

function source() {
  return createLinuxLoginSource({ systemRoot: root, state: { getState: (k) => state.get(k) ?? null } });
}

/** One pass, committing the positions as the agent does. */
async function pass(): Promise<LoginPass> {
  const p = await source().readNew();
  for (const [k, v] of p.state) state.set(k, v);
  return p;
}

const summary = (p: LoginPass) => p.events.map((e) => `${e.type} ${(e.payload as { user?: string }).user ?? ''}`.trim());

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-wtmp-'));
  fs.mkdirSync(logDir(), { recursive: true });
  state = new Map();
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('wtmp and btmp on Linux', () => {
  it('turns the records util-linux wrote into the events last reports', async () => {
    fs.writeFileSync(path.join(logDir(), 'wtmp'), utmpFile('wtmp.txt'));
    fs.writeFileSync(path.join(logDir(), 'btmp'), utmpFile('btmp.txt'));
    const p = await pass();
    expect(summary(p)).toEqual(['system.boot', 'login.success yamada', 'login.success suzuki', 'logout suzuki', 'login.failure tanaka']);
    expect(p.events[2]!.payload).toMatchObject({ user: 'suzuki', source: 'wtmp', line: 'pts/0', remoteHost: '10.1.2.3', time: '2026-11-24T09:00:00.000Z' });
    expect(p.events[3]!.payload).toMatchObject({ sessionSeconds: 45 * 60 + 30, time: '2026-11-24T09:45:30.000Z' });
    expect(p.events[4]!.payload).toMatchObject({ user: 'tanaka', source: 'btmp', remoteHost: '192.0.2.66' });
    expect(p.badRecords).toBe(0);
    // The same users, lines and order as util-linux's own reader.
    const last = execFileSync('last', ['-f', path.join(logDir(), 'wtmp')], { encoding: 'utf8' });
    const lastUsers = last
      .split('\n')
      .filter((l) => /^(suzuki|yamada)/.test(l))
      .map((l) => l.split(/\s+/).slice(0, 2).join(' '));
    const ours = p.events
      .filter((e) => e.type === 'login.success')
      .map((e) => `${(e.payload as { user: string }).user} ${(e.payload as { line: string }).line}`);
    expect(ours).toEqual([...lastUsers].reverse());
  });

  it('emits nothing on a second pass and only what was appended after', async () => {
    fs.writeFileSync(path.join(logDir(), 'wtmp'), utmpFile('wtmp.txt'));
    await pass();
    expect((await pass()).events).toEqual([]);
    fs.appendFileSync(path.join(logDir(), 'wtmp'), utmpFile('wtmp-append.txt'));
    const p = await pass();
    expect(summary(p)).toEqual(['logout yamada']);
    expect(p.events[0]!.payload).toMatchObject({ sessionSeconds: 9 * 3600 });
  });

  it('finishes the rotated file and starts the new one after a rotation', async () => {
    const wtmp = path.join(logDir(), 'wtmp');
    const records = utmpFile('wtmp.txt');
    fs.writeFileSync(wtmp, records.subarray(0, 4 * UTMP_RECORD_SIZE));
    expect(summary(await pass())).toEqual(['system.boot', 'login.success yamada']);
    fs.appendFileSync(wtmp, records.subarray(4 * UTMP_RECORD_SIZE));
    fs.renameSync(wtmp, `${wtmp}.1`);
    fs.writeFileSync(wtmp, utmpFile('wtmp-append.txt'));
    expect(summary(await pass())).toEqual(['login.success suzuki', 'logout suzuki', 'logout yamada']);
  });

  it('reads a truncated or replaced file again from the start', async () => {
    const wtmp = path.join(logDir(), 'wtmp');
    fs.writeFileSync(wtmp, utmpFile('wtmp.txt'));
    await pass();
    fs.truncateSync(wtmp, 0);
    expect((await pass()).events).toEqual([]);
    fs.writeFileSync(wtmp, utmpFile('wtmp.txt').subarray(4 * UTMP_RECORD_SIZE, 5 * UTMP_RECORD_SIZE));
    expect(summary(await pass())).toEqual(['login.success suzuki']);
    // Replaced in place by a longer file with another first record.
    fs.writeFileSync(wtmp, Buffer.concat([utmpFile('btmp.txt'), utmpFile('wtmp.txt')]));
    const again = await pass();
    expect(summary(again)).toContain('login.success yamada');
  });

  it('waits for a record that is only partly written', async () => {
    const wtmp = path.join(logDir(), 'wtmp');
    const records = utmpFile('wtmp.txt');
    fs.writeFileSync(wtmp, records.subarray(0, 5 * UTMP_RECORD_SIZE + 100));
    expect(summary(await pass())).toEqual(['system.boot', 'login.success yamada', 'login.success suzuki']);
    fs.writeFileSync(wtmp, records);
    expect(summary(await pass())).toEqual(['logout suzuki']);
  });

  it('skips and counts garbage, and keeps non-UTF-8 and hostile user names as data', async () => {
    const wtmp = path.join(logDir(), 'wtmp');
    const hostile = Buffer.from(utmpFile('wtmp.txt').subarray(4 * UTMP_RECORD_SIZE, 5 * UTMP_RECORD_SIZE));
    hostile.fill(0, 44, 76);
    Buffer.concat([Buffer.from('=cmd|'), Buffer.from([0xff, 0xfe]), Buffer.from('<b>')]).copy(hostile, 44);
    const garbage = Buffer.alloc(UTMP_RECORD_SIZE * 3, 0xab);
    fs.writeFileSync(wtmp, Buffer.concat([hostile, garbage]));
    const p = await pass();
    expect(p.badRecords).toBe(3);
    expect((p.events[0]!.payload as { user: string }).user).toBe('=cmd|\ufffd\ufffd<b>');
  });

  it('reads a large file in fixed-size chunks', async () => {
    const one = utmpFile('btmp.txt');
    const count = 20_000;
    const big = Buffer.alloc(one.length * count);
    for (let i = 0; i < count; i++) one.copy(big, i * one.length);
    fs.writeFileSync(path.join(logDir(), 'btmp'), big);
    const reads: number[] = [];
    const original = fs.readSync;
    const spy = (fd: number, buffer: NodeJS.ArrayBufferView, ...rest: unknown[]) => {
      reads.push(buffer.byteLength);
      return (original as (...a: unknown[]) => number)(fd, buffer, ...rest);
    };
    (fs as { readSync: unknown }).readSync = spy;
    try {
      expect((await pass()).events).toHaveLength(count);
    } finally {
      (fs as { readSync: unknown }).readSync = original;
    }
    expect(reads.length).toBeGreaterThan(count / READ_RECORDS);
    expect(Math.max(...reads)).toBeLessThanOrEqual(READ_RECORDS * UTMP_RECORD_SIZE);
  });

  it('decodes nothing from a short buffer or an impossible type', () => {
    expect(decodeUtmp(Buffer.alloc(100))).toBeNull();
    const bad = Buffer.alloc(UTMP_RECORD_SIZE);
    bad.writeInt16LE(42, 0);
    expect(decodeUtmp(bad)).toBeNull();
  });

  it('has nothing to say without the files', async () => {
    expect(await pass()).toMatchObject({ events: [], badRecords: 0 });
  });
});
