import type net from 'node:net';
import type { CommandRunner } from './command';
import { socketFd, type PeerIdentity, type PeerResolver } from './peer';
import { UNVERIFIED_PEER } from './peer-win32';

/**
 * macOS: LOCAL_PEERCRED needs native code, so the peer is found with `lsof -nP -l -U`
 * (docs/design.md#ipc-peers): the agent's row for the accepted socket's fd gives the socket's
 * kernel address (DEVICE); the rows whose NAME points at it (`->0x…`) are the peer's holders, and
 * USER (numeric with `-l`) their uid. Written from lsof's documented output; not yet run on a Mac.
 */

/** One row of `lsof -nP -l -U`. */
export interface LsofUnixRow {
  pid: number;
  uid: number;
  fd: string;
  device: string;
  name: string;
}

/** Parses `lsof -nP -l -U` (COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME; NODE is blank for unix sockets). */
export function parseLsofUnix(stdout: string): LsofUnixRow[] {
  const rows: LsofUnixRow[] = [];
  for (const line of stdout.split('\n').slice(1)) {
    const m = /^\S+\s+(\d+)\s+(\d+)\s+(\S+)\s+unix\s+(0x[0-9a-f]+)\s+\S+\s+(.*)$/i.exec(line.trim());
    if (m) rows.push({ pid: Number(m[1]), uid: Number(m[2]), fd: m[3]!, device: m[4]!.toLowerCase(), name: m[5]!.trim().toLowerCase() });
  }
  return rows;
}

/** The peer of the agent's socket at `fd` in `rows`; null unless every holder has one uid. */
export function peerFromLsof(rows: LsofUnixRow[], agentPid: number, fd: number): PeerIdentity | null {
  const own = rows.find((r) => r.pid === agentPid && r.fd.replace(/[a-z]+$/i, '') === String(fd));
  if (!own) return null;
  const holders = rows.filter((r) => r.name.includes(`->${own.device}`) && r !== own);
  const uids = new Set(holders.map((h) => h.uid));
  if (uids.size !== 1) return null;
  const uid = holders[0]!.uid;
  return { key: `uid:${uid}`, verified: true, uid, pid: holders[0]!.pid, user: String(uid) };
}

export function createDarwinPeerResolver(opts: { run: CommandRunner; pid?: number; onUnavailable?: (why: string) => void }): PeerResolver {
  return {
    async identify(socket: net.Socket) {
      const fd = socketFd(socket);
      if (fd === undefined) return null;
      const { stdout, code } = await opts.run('lsof', ['-nP', '-l', '-U']);
      // lsof also exits 1 when some files could not be listed; its output still counts.
      if (stdout.trim()) return peerFromLsof(parseLsofUnix(stdout), opts.pid ?? process.pid, fd);
      opts.onUnavailable?.(`lsof -U exited ${code} with no output`);
      return UNVERIFIED_PEER;
    },
  };
}
