import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../../src/agent/os/command';
import { parseLsofUnix, peerFromLsof } from '../../../src/agent/os/peer-darwin';
import { createLinuxPeerResolver, parseGetentName, parseSsUnix, parseStatusRealUid } from '../../../src/agent/os/peer-linux';
import { createSessionProbe } from '../../../src/agent/os/session';
import { parseConsoleStat } from '../../../src/agent/os/session-darwin';
import { parseSeatFile, parseWhoConsole } from '../../../src/agent/os/session-linux';
import { parseQueryUser } from '../../../src/agent/os/session-win32';

// Fixtures and how each was made: test/fixtures/os/README.md.
const FIX = path.resolve(__dirname, '../../fixtures/os');
const read = (name: string) => fs.readFileSync(path.join(FIX, name), 'utf8');

/** Replays recorded output per command line; anything else exits 1 with nothing. */
const replay =
  (outputs: Record<string, string>): CommandRunner =>
  async (command, args) => {
    const key = [command, ...args].join(' ');
    return key in outputs ? { stdout: outputs[key]!, code: 0 } : { stdout: '', code: 1 };
  };

describe('Linux peer from ss -xpn and /proc (recorded on this machine)', () => {
  const recorded = JSON.parse(read('linux/ss-xpn.json')) as { serverInode: number; peerInode: number; peerPid: number };

  it("finds the client's socket and process from the server side's inode", () => {
    const rows = parseSsUnix(read('linux/ss-xpn.txt'));
    const own = rows.find((r) => r.inode === recorded.serverInode)!;
    expect(own.peerInode).toBe(recorded.peerInode);
    const peer = rows.find((r) => r.inode === own.peerInode)!;
    expect(peer.peerInode).toBe(recorded.serverInode);
    expect(peer.holders.map((h) => h.pid)).toEqual([recorded.peerPid]);
    expect(parseStatusRealUid(read('linux/proc-status-nobody.txt'))).toBe(65534);
    expect(parseGetentName(read('linux/getent-passwd-65534.txt'))).toBe('nobody');
  });

  it('names the peer only while the process still holds that socket (a reused pid is not believed)', async () => {
    const holder = parseSsUnix(read('linux/ss-xpn.txt')).find((r) => r.inode === recorded.peerInode)!.holders[0]!;
    const links: Record<string, string> = {
      '/proc/self/fd/20': `socket:[${recorded.serverInode}]`,
      [`/proc/${recorded.peerPid}/fd/${holder.fd}`]: `socket:[${recorded.peerInode}]`,
    };
    const proc = {
      readlink: (p: string) => links[p] ?? null,
      readFile: (p: string) => (p === `/proc/${recorded.peerPid}/status` ? read('linux/proc-status-nobody.txt') : null),
    };
    const run = replay({ 'ss -xpn': read('linux/ss-xpn.txt'), 'getent passwd 65534': read('linux/getent-passwd-65534.txt') });
    const socket = { _handle: { fd: 20 } } as never;
    expect(await createLinuxPeerResolver({ run, proc }).identify(socket)).toMatchObject({
      key: 'uid:65534',
      verified: true,
      user: 'nobody',
      pid: recorded.peerPid,
    });
    // The pid now holds something else: no identity, and the connection is closed.
    links[`/proc/${recorded.peerPid}/fd/${holder.fd}`] = 'socket:[1]';
    expect(await createLinuxPeerResolver({ run, proc }).identify(socket)).toBeNull();
  });
});

describe('console session user', () => {
  it("reads logind's seat0: the active session's uid, none at the greeter", () => {
    expect(parseSeatFile(read('linux/seat0'))).toBe(1000);
    expect(parseSeatFile(read('linux/seat0-greeter'))).toBeNull();
  });

  it('without logind, takes the newest local terminal from real who output, never a remote pts', () => {
    expect(parseWhoConsole(read('linux/who.txt'))).toBe('tanaka');
  });

  it('asks the OS once per few seconds (Linux without logind: who, then getent)', async () => {
    let calls = 0;
    const run: CommandRunner = async (command, args) => {
      calls++;
      if (command === 'who') return { stdout: read('linux/who.txt'), code: 0 };
      if (command === 'getent' && args[1] === 'tanaka') return { stdout: 'tanaka:x:1003:1003::/home/tanaka:/bin/bash\n', code: 0 };
      return { stdout: '', code: 2 };
    };
    let t = 0;
    const probe = createSessionProbe({ platform: 'linux', run, systemRoot: path.join(FIX, 'no-such-root'), now: () => t });
    expect(await probe.consoleUser()).toEqual({ key: 'uid:1003', user: 'tanaka' });
    await probe.consoleUser();
    expect(calls).toBe(2);
    t += 5_000;
    await probe.consoleUser();
    expect(calls).toBe(4);
  });

  it('Windows: the Active console row of query user (fixture from the documented format)', () => {
    expect(parseQueryUser(read('windows/query-user.txt'))).toBe('yamada');
  });

  it('macOS: the owner of /dev/console, nobody at the login window (fixture from the documented format)', () => {
    expect(parseConsoleStat(read('macos/stat-dev-console.txt'))).toEqual({ key: 'uid:501', user: 'yamada' });
    expect(parseConsoleStat('0 root\n')).toBeNull();
  });
});

describe('macOS peer from lsof -U (fixture from the documented format)', () => {
  it("finds the process whose socket points at the agent's accepted socket", () => {
    const rows = parseLsofUnix(read('macos/lsof-U.txt'));
    expect(peerFromLsof(rows, 812, 27)).toMatchObject({ key: 'uid:501', pid: 1422 });
    expect(peerFromLsof(rows, 812, 23)).toBeNull();
  });
});

describe('when the OS tool is missing', () => {
  it('Linux without ss serves clients as the one unverified peer (as on Windows) and says so, rather than refusing the tray', async () => {
    const why: string[] = [];
    const proc = { readlink: () => 'socket:[42]', readFile: () => null };
    const resolver = createLinuxPeerResolver({ run: async () => ({ stdout: '', code: 1 }), proc, onUnavailable: (w) => void why.push(w) });
    expect(await resolver.identify({ _handle: { fd: 20 } } as never)).toMatchObject({ key: 'unverified', verified: false });
    expect(why).toEqual(['ss -xpn exited 1']);
  });
});
