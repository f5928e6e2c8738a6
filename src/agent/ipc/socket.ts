import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { handleIpcLine, streamLineTransport, type AgentService, type LineTransport } from '../../shared';
import type { Logger } from '../logger';

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

/**
 * Serves the agent's IPC contract on a Unix socket or named pipe. On POSIX the socket's folder is
 * made by the agent and kept writable only by it, so a local user can connect but cannot replace
 * or hijack the socket; the socket itself is open to local users (mode 0666), who get only what
 * each method grants.
 * @throws when another agent is already listening on the path.
 */
export async function startIpcServer(opts: { path: string; service: AgentService; logger: Logger; maxConnections?: number }): Promise<IpcServer> {
  const isPipe = opts.path.startsWith('\\\\');
  if (!isPipe) {
    const dir = path.dirname(opts.path);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (fs.existsSync(opts.path)) {
      const stat = fs.lstatSync(opts.path);
      if (!stat.isSocket()) throw new Error(`${opts.path} exists and is not a socket; not replacing it`);
      if (await isLive(opts.path)) throw new Error(`another agent is already listening on ${opts.path}`);
      fs.unlinkSync(opts.path);
    }
  }
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const transport = socketTransport(socket);
    transport.onLine((line) => {
      void handleIpcLine(opts.service, line).then((response) => {
        if (response !== null) transport.send(response);
      });
    });
  });
  server.maxConnections = opts.maxConnections ?? 32;
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
