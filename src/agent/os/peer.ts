import type net from 'node:net';
import type { CommandRunner } from './command';
import { createDarwinPeerResolver } from './peer-darwin';
import { createLinuxPeerResolver } from './peer-linux';
import { createWindowsPeerResolver } from './peer-win32';

export { UNVERIFIED_PEER } from './peer-win32';

/**
 * Who is on the other end of an IPC connection (docs/design.md#ipc-peers). Limits are kept per
 * `key`; events name `user`.
 */
export interface PeerIdentity {
  /** What limits are kept by: `uid:1000` (Linux, macOS), or `unverified` where the OS cannot say. */
  key: string;
  /** True when the OS vouched for the peer's account; false for the shared `unverified` key. */
  verified: boolean;
  uid?: number;
  pid?: number;
  /** The account name, or the key when no name is known. */
  user: string;
}

/** Finds the peer of an accepted connection. */
export interface PeerResolver {
  /**
   * The account on the other end of `socket`; null when the OS names none (the client went away,
   * or holders of its socket disagree): such a connection is closed. Never rejects.
   */
  identify(socket: net.Socket): Promise<PeerIdentity | null>;
}

/** The accepted socket's own file descriptor (Unix sockets only; -1 or undefined elsewhere). */
export function socketFd(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * The resolver for a platform (`process.platform`'s names). `onUnavailable` hears when the OS
 * tool a resolver needs cannot run; connections are then served as `unverified`.
 */
export function createPeerResolver(platform: string, run: CommandRunner, onUnavailable?: (why: string) => void): PeerResolver {
  if (platform === 'win32') return createWindowsPeerResolver();
  if (platform === 'darwin') return createDarwinPeerResolver({ run, ...(onUnavailable ? { onUnavailable } : {}) });
  return createLinuxPeerResolver({ run, ...(onUnavailable ? { onUnavailable } : {}) });
}
