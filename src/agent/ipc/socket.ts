import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { JSON_RPC_ERRORS, handleIpcLine, streamLineTransport, type AgentService, type LineTransport } from '../../shared';
import type { Logger } from '../logger';
import { execRunner } from '../os/command';
import { createPeerResolver, type PeerIdentity, type PeerResolver } from '../os/peer';
import type { SessionProbe } from '../os/session';
import type { AgentServiceHost } from './service';

/** Wraps a socket as a line transport. */
export const socketTransport = (socket: net.Socket): LineTransport => streamLineTransport(socket);

/** Connects to the agent's socket or pipe. */
export function connectIpc(ipcPath: string, timeoutMs = 5_000): Promise<LineTransport> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(ipcPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the agent did not answer on ${ipcPath}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socketTransport(socket));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the agent on ${ipcPath}: ${err.code ?? err.message}`));
    });
  });
}

export interface IpcServer {
  readonly path: string;
  stop(): Promise<void>;
}

/**
 * True when something answers on the socket or pipe: an agent runs there (so a stale socket is not
 * one to remove, and an uninstall must stop the service first).
 */
export function isLive(ipcPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(ipcPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Connection limits of the IPC server (docs/design.md#ipc-limits). */
export interface ConnectionLimits {
  /** Connections at once, everyone together. */
  maxConnections: number;
  /** Connections at once per user; this many are also kept free for the console session's user. */
  perUser: number;
  /** A connection that sends and receives nothing this long is closed. */
  idleMs: number;
  /** Connections still being identified at once; more are closed at once. */
  maxIdentifying: number;
}

/**
 * Open sockets of any kind (served, being identified, being refused) beyond which a new one is
 * dropped unanswered: a bound on descriptors only. Not Node's `server.maxConnections`, which would
 * count refusals still closing against the console user's kept slots.
 */
const HARD_CEILING = 512;

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 32, perUser: 4, idleMs: 60_000, maxIdentifying: 16 };

export interface IpcServerOptions {
  path: string;
  /** The service, one view per peer. */
  service: AgentServiceHost | ((peer: PeerIdentity) => AgentService);
  logger: Logger;
  /** Who is on the other end; the OS's own by default. */
  peers?: PeerResolver;
  /** The console session's user, whose slots are kept; the service host's by default, none kept without either. */
  sessions?: SessionProbe;
  limits?: Partial<ConnectionLimits>;
}

function refuse(socket: net.Socket, message: string) {
  socket.on('error', () => undefined);
  socket.end(
    `${JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: JSON_RPC_ERRORS.application, message, data: { code: 'too_many_connections' } } })}\n`,
  );
  // A refused socket lingers only briefly, so refusals cannot pile up into a lockout of their own.
  setTimeout(() => socket.destroy(), 200).unref();
}

/** Removes a dead agent's socket file; refuses to replace anything else or a live agent's socket. */
async function clearStaleSocket(file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  if (!fs.existsSync(file)) return;
  const stat = fs.lstatSync(file);
  if (!stat.isSocket()) throw new Error(`${file} exists and is not a socket; not replacing it`);
  if (await isLive(file)) throw new Error(`another agent is already listening on ${file}`);
  fs.unlinkSync(file);
}

/**
 * Whether `peer` may hold one more connection: `perUser` each, and that many kept free for the
 * console session's user; unverified peers share what is left when those slots are kept.
 */
function hasRoom(peer: PeerIdentity, consoleKey: string | null, byUser: Map<string, number>, limits: { maxConnections: number; perUser: number }) {
  const isConsole = peer.verified && peer.key === consoleKey;
  const mine = byUser.get(peer.key) ?? 0;
  const total = [...byUser.values()].reduce((a, b) => a + b, 0);
  const consoleHeld = consoleKey ? (byUser.get(consoleKey) ?? 0) : 0;
  // Everyone else shares what is left when the console user's slots are kept free.
  const othersRoom = limits.maxConnections - limits.perUser - (total - consoleHeld);
  const ok = peer.verified
    ? mine < limits.perUser && (isConsole ? total < limits.maxConnections : othersRoom > 0)
    : total < limits.maxConnections - (consoleKey ? limits.perUser : 0);
  return { ok, mine, total, isConsole };
}

/**
 * Serves the agent's IPC contract on a Unix socket or named pipe. On POSIX the socket's folder is
 * made by the agent and kept writable only by it, so a local user can connect but cannot replace
 * or hijack the socket; the socket itself is open to local users (mode 0666), who get only what
 * each method grants them as the peer the OS names. Each user may hold `perUser` connections, and
 * that many are kept for the console session's user, so other users cannot lock the tray out; an
 * idle connection is closed.
 * @throws when another agent is already listening on the path.
 */
export async function startIpcServer(opts: IpcServerOptions): Promise<IpcServer> {
  const isPipe = opts.path.startsWith('\\\\');
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits };
  let warned = false;
  const peers =
    opts.peers ??
    createPeerResolver(process.platform, execRunner, (why) => {
      if (!warned) opts.logger.warn({ why }, 'IPC peers cannot be identified; serving every client as one unverified user');
      warned = true;
    });
  const serviceFor = typeof opts.service === 'function' ? opts.service : opts.service.forPeer;
  const sessions = opts.sessions ?? (typeof opts.service === 'function' ? undefined : opts.service.sessions);
  if (!isPipe) await clearStaleSocket(opts.path);
  const sockets = new Set<net.Socket>();
  const byUser = new Map<string, number>();
  let identifying = 0;

  async function admit(socket: net.Socket): Promise<PeerIdentity | null> {
    // A tool that hangs must not hold a slot: no answer in 5 s is no identity.
    const late = new Promise<null>((resolve) => setTimeout(() => resolve(null), 5_000).unref());
    const [peer, console] = await Promise.all([Promise.race([peers.identify(socket), late]), Promise.race([sessions?.consoleUser() ?? null, late])]);
    if (!peer) {
      opts.logger.debug({}, 'IPC connection refused: no peer identity');
      refuse(socket, 'the agent cannot tell who is connecting');
      return null;
    }
    const { ok, mine, total, isConsole } = hasRoom(peer, console?.key ?? null, byUser, limits);
    if (!ok || socket.destroyed) {
      opts.logger.debug({ peer: peer.key, mine, total, isConsole, destroyed: socket.destroyed }, 'IPC connection refused');
      if (!socket.destroyed) refuse(socket, 'too many connections from this user');
      return null;
    }
    byUser.set(peer.key, mine + 1);
    socket.once('close', () => {
      const n = (byUser.get(peer.key) ?? 1) - 1;
      if (n > 0) byUser.set(peer.key, n);
      else byUser.delete(peer.key);
    });
    return peer;
  }

  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (sockets.size > HARD_CEILING) {
      socket.destroy();
      return;
    }
    if (identifying >= limits.maxIdentifying) {
      refuse(socket, 'too many connections at once; try again');
      return;
    }
    identifying++;
    void admit(socket)
      .catch(() => null)
      .then((peer) => {
        identifying--;
        if (!peer) return;
        socket.setTimeout(limits.idleMs, () => socket.destroy());
        const service = serviceFor(peer);
        const transport = socketTransport(socket);
        transport.onLine((line) => {
          void handleIpcLine(service, line).then((response) => {
            if (response !== null) transport.send(response);
          });
        });
        socket.resume();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A pipe made by the LocalSystem service would otherwise let other users read but not write:
    // the tray runs as the staff member, and gets only what each method grants.
    server.listen(isPipe ? { path: opts.path, readableAll: true, writableAll: true } : opts.path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (!isPipe) fs.chmodSync(opts.path, 0o666);
  opts.logger.info({ path: opts.path }, 'IPC listening');
  return {
    path: opts.path,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Connected trays see the close and reconnect with backoff.
        for (const socket of sockets) socket.destroy();
      }),
  };
}
