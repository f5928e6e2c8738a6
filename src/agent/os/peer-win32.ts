import type { PeerIdentity, PeerResolver } from './peer';

/** The one identity given to clients the OS cannot name (the Windows pipe today). */
export const UNVERIFIED_PEER: PeerIdentity = Object.freeze({ key: 'unverified', verified: false, user: 'unverified' });

/**
 * Windows: the pipe client's process is known to the OS (`GetNamedPipeClientProcessId`), but
 * Node exposes neither that call nor the pipe's handle, and no tool outside the agent's process
 * can ask about the agent's own pipe instance. So every pipe client is the one shared
 * `unverified` peer: limits hold for all clients together, not per user, and nothing that needs
 * the console user's word (a `sessionEvent` lock or unlock) is accepted over the pipe. Locks and
 * unlocks are read from the Security log (4800/4801) instead. See docs/design.md#ipc-peers.
 */
export function createWindowsPeerResolver(): PeerResolver {
  return { identify: () => Promise.resolve(UNVERIFIED_PEER) };
}
