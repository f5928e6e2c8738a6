import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMacLoginSource, createWindowsLoginSource, parseLast, parseWevtutilXml, securityQuery, securityRecordToEvent } from '../../../src/agent/logins';
import { parseEventPayload, type NewEvent } from '../../../src/shared';

const WIN = path.resolve(__dirname, '../../fixtures/windows/security-log');
const MAC = path.resolve(__dirname, '../../fixtures/macos/last');
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8');

function events(xml: string): NewEvent[] {
  return parseWevtutilXml(xml)
    .records.map(securityRecordToEvent)
    .filter((e): e is NewEvent => e !== null);
}

describe('Windows Security log', () => {
  it('keeps interactive, unlock, remote and cached logons, locks and logoffs, and drops service and network ones', () => {
    const list = events(read(WIN, 'session-day.xml'));
    expect(list.map((e) => `${e.type} ${(e.payload as { user?: string }).user}`)).toEqual([
      'login.success CITY\\yamada',
      'login.success CITY\\suzuki',
      'session.lock CITY\\yamada',
      'session.unlock CITY\\yamada',
      'login.success CITY\\yamada',
      'logout CITY\\yamada',
      'logout CITY\\yamada',
    ]);
    expect(list[1]!.payload).toMatchObject({ logonType: 10, remoteHost: '10.1.2.3', source: 'security-log', time: '2026-11-24T01:00:00.000Z' });
    expect(list[0]!.payload).toMatchObject({ logonType: 2, time: '2026-11-24T00:01:02.123Z' });
    for (const e of list) expect(() => parseEventPayload(e.type, e.payload)).not.toThrow();
  });

  it('decodes 4625 Status and SubStatus into a reason', () => {
    const list = events(read(WIN, 'failures.xml'));
    expect(list.map((e) => (e.payload as { reason: string }).reason)).toEqual([
      'wrong password',
      'no such user',
      'account locked out',
      'account disabled',
      'outside allowed hours',
      'workstation not allowed',
      'password expired',
      'account expired',
      'clock out of sync with the domain controller',
      'password must be changed',
      'logon type not granted',
      'wrong password',
    ]);
    const hostile = list[list.length - 1]!.payload as { user: string; remoteHost: string };
    expect(hostile.user).toBe('CITY\\=HYPERLINK("http://evil.example")<script>');
    expect(hostile.remoteHost).toBe('192.0.2.66');
  });

  it('counts records it cannot read instead of failing', () => {
    const { records, bad } = parseWevtutilXml(
      "<Event><System><EventID>4624</EventID></System></Event><Event><System><EventID>x</EventID><EventRecordID>5</EventRecordID><TimeCreated SystemTime='2026-11-24T00:00:00Z'/></System></Event>",
    );
    expect(records).toEqual([]);
    expect(bad).toBe(2);
    expect(parseWevtutilXml('<<<not xml').bad).toBe(1);
  });

  it('queries after the bookmark and moves the bookmark to the newest record', async () => {
    const calls: string[][] = [];
    const state = new Map<string, string>([['logins.security.record', '1000']]);
    const source = createWindowsLoginSource({
      runner: async (cmd, args) => {
        calls.push([cmd, ...args]);
        return { stdout: read(WIN, 'session-day.xml'), code: 0 };
      },
      state: { getState: (k) => state.get(k) ?? null },
    });
    const pass = await source.readNew();
    expect(calls[0]).toContain(`/q:${securityQuery(1000)}`);
    expect(securityQuery(1000)).toBe(
      '*[System[(EventID=4624 or EventID=4625 or EventID=4634 or EventID=4647 or EventID=4800 or EventID=4801) and EventRecordID>1000]]',
    );
    expect(pass.state).toEqual([['logins.security.record', '1010']]);
    expect(pass.events).toHaveLength(7);
  });
});

describe('macOS last', () => {
  const reference = new Date('2026-11-24T12:00:00Z');

  it('reads sessions, reboots and shutdowns, with the year inferred across New Year', () => {
    const { entries, bad } = parseLast(read(MAC, 'last.txt'), reference);
    expect(bad).toBe(0);
    expect(entries.map((e) => `${e.kind} ${e.user} ${e.start}`)).toEqual([
      'session yamada 2026-11-24T08:30:00.000Z',
      'session suzuki 2026-11-24T09:00:00.000Z',
      'reboot reboot 2026-11-24T08:00:00.000Z',
      'shutdown shutdown 2026-11-23T18:00:00.000Z',
      'session tanaka 2026-11-23T08:45:00.000Z',
      'session sato 2025-12-31T23:30:00.000Z',
    ]);
    expect(entries[1]).toMatchObject({ host: '10.1.2.3', end: '2026-11-24T09:45:00.000Z' });
    expect(entries[5]!.end).toBe('2026-01-02T01:15:00.000Z');
  });

  it('converts the local time of a terminal in Japan to UTC', () => {
    const { entries } = parseLast('yamada    console                   Tue Nov 24 08:30   still logged in\n', reference, 9 * 60);
    expect(entries[0]!.start).toBe('2026-11-23T23:30:00.000Z');
  });

  it('emits each login and logout once across runs, and a logout when it appears later', async () => {
    const state = new Map<string, string>();
    let output = 'yamada    console                   Tue Nov 24 08:30   still logged in\n';
    const source = createMacLoginSource({
      runner: async () => ({ stdout: output, code: 0 }),
      state: { getState: (k) => state.get(k) ?? null },
      now: () => reference,
    });
    const run = async () => {
      const p = await source.readNew();
      for (const [k, v] of p.state) state.set(k, v);
      return p.events.map((e) => e.type);
    };
    expect(await run()).toEqual(['login.success']);
    expect(await run()).toEqual([]);
    output = 'yamada    console                   Tue Nov 24 08:30 - 17:30  (09:00)\n';
    expect(await run()).toEqual(['logout']);
  });

  it('counts lines it cannot read', () => {
    expect(parseLast('garbage line here\n', reference).bad).toBe(1);
  });
});
