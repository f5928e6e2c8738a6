import fs from 'node:fs';
import type net from 'node:net';
import type { CommandRunner } from './command';
import { socketFd, type PeerIdentity, type PeerResolver } from './peer';
import { UNVERIFIED_PEER } from './peer-win32';

/**
 * Linux: Node has no SO_PEERCRED, so the peer is found the way `ss` finds it (docs/design.md#ipc-peers):
 * the accepted socket's inode from `/proc/self/fd/<fd>`, its peer's inode and the processes that
 * hold the peer from `ss -xpn` (the kernel's sock_diag answer), then each holder's real uid from
 * `/proc/<pid>/status`, checked again against `/proc/<pid>/fd/<fd>` so a pid reused in between
 * is not believed. The real uid, not the effective one: a client that execs a set-uid program
 * with the socket open stays who it was.
 */

/** One row of `ss -xpn`: the socket's inode, its peer's, and the processes holding it. */
export interface SsUnixRow {
  inode: number;
  peerInode: number;
  holders: { pid: number; fd: number }[];
}

/** Parses `ss -xpn` (iproute2); rows it cannot read are skipped. */
export function parseSsUnix(stdout: string): SsUnixRow[] {
  const rows: SsUnixRow[] = [];
  for (const line of stdout.split('\n')) {
    // u_str ESTAB 0 0 <local addr> <inode> <peer addr> <peer inode> [users:((...))]
    const m = /^u_(?:str|seq)\s+\S+\s+\d+\s+\d+\s+(.*?)\s+(\d+)\s+\S+\s+(\d+)(?:\s+users:\((.*)\))?\s*$/.exec(line);
    if (!m) continue;
    const holders = [...(m[4] ?? '').matchAll(/pid=(\d+),fd=(\d+)/g)].map((h) => ({ pid: Number(h[1]), fd: Number(h[2]) }));
    rows.push({ inode: Number(m[2]), peerInode: Number(m[3]), holders });
  }
  return rows;
}

/** The real uid in a `/proc/<pid>/status` (its `Uid:` line: real, effective, saved, fs). */
export function parseStatusRealUid(status: string): number | null {
  const m = /^Uid:\s+(\d+)/m.exec(status);
  return m ? Number(m[1]) : null;
}

/** The account name in a `getent passwd <uid>` line. */
export function parseGetentName(stdout: string): string | null {
  const name = stdout.split('\n')[0]?.split(':')[0];
  return name ? name : null;
}

/** What the resolver reads from `/proc`; replaced in tests. */
export interface ProcReader {
  readlink(path: string): string | null;
  readFile(path: string): string | null;
}

const realProc: ProcReader = {
  readlink: (p) => {
    try {
      return fs.readlinkSync(p);
    } catch {
      return null;
    }
  },
  readFile: (p) => {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return null;
    }
  },
};

const socketInode = (link: string | null): number | null => {
  const m = /^socket:\[(\d+)\]$/.exec(link ?? '');
  return m ? Number(m[1]) : null;
};

/**
 * @param opts.onUnavailable called when `ss` cannot run (not installed, fails): connections are
 *   then served as the shared `unverified` peer, as on Windows, rather than all refused.
 */
export function createLinuxPeerResolver(opts: { run: CommandRunner; proc?: ProcReader; onUnavailable?: (why: string) => void }): PeerResolver {
  const proc = opts.proc ?? realProc;
  const names = new Map<number, string>();
  // Connections waiting for the next `ss` run, by their own inode: one run answers them all, so a
  // flood of connections costs one `ss` at a time.
  let waiting = new Map<number, ((id: PeerIdentity | null) => void)[]>();
  let running = false;

  async function nameOf(uid: number): Promise<string> {
    const known = names.get(uid);
    if (known) return known;
    const { stdout, code } = await opts.run('getent', ['passwd', String(uid)]);
    const name = (code === 0 && parseGetentName(stdout)) || String(uid);
    if (names.size > 1_000) names.clear();
    names.set(uid, name);
    return name;
  }

  async function resolve(rows: SsUnixRow[], inode: number): Promise<PeerIdentity | null> {
    const own = rows.find((r) => r.inode === inode);
    const peer = own && rows.find((r) => r.inode === own.peerInode && r.peerInode === inode);
    if (!peer || peer.holders.length === 0) return null;
    const uids = new Set<number>();
    for (const h of peer.holders) {
      const uid = parseStatusRealUid(proc.readFile(`/proc/${h.pid}/status`) ?? '');
      // Still the same process holding the same socket after the read: not a reused pid.
      if (uid === null || socketInode(proc.readlink(`/proc/${h.pid}/fd/${h.fd}`)) !== peer.inode) return null;
      uids.add(uid);
    }
    // Holders of one socket under several accounts: nobody can say whose it is.
    if (uids.size !== 1) return null;
    const [uid] = [...uids] as [number];
    return { key: `uid:${uid}`, verified: true, uid, pid: peer.holders[0]!.pid, user: await nameOf(uid) };
  }

  async function drain() {
    running = true;
    try {
      while (waiting.size) {
        const batch = waiting;
        waiting = new Map();
        const { stdout, code } = await opts.run('ss', ['-xpn']);
        if (code !== 0) {
          opts.onUnavailable?.(`ss -xpn exited ${code}`);
          for (const listeners of batch.values()) for (const l of listeners) l(UNVERIFIED_PEER);
          continue;
        }
        const rows = parseSsUnix(stdout);
        for (const [inode, listeners] of batch) {
          const id = await resolve(rows, inode).catch(() => null);
          for (const l of listeners) l(id);
        }
      }
    } finally {
      running = false;
    }
  }

  return {
    identify(socket: net.Socket) {
      const fd = socketFd(socket);
      const inode = fd === undefined ? null : socketInode(proc.readlink(`/proc/self/fd/${fd}`));
      if (inode === null) return Promise.resolve(null);
      return new Promise((done) => {
        waiting.set(inode, [...(waiting.get(inode) ?? []), done]);
        if (!running) void drain();
      });
    },
  };
}
