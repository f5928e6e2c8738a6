import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Destination } from './store';

/** A connection to a SIEM that writes whole buffers, each within a time limit. */
export interface SiemConnection {
  /**
   * Resolves once the bytes were handed to the operating system.
   * @throws Error when the connection failed or the SIEM did not read within the write timeout.
   */
  write(bytes: Buffer): Promise<void>;
  /** True until the connection closed or failed. */
  readonly open: boolean;
  /** Why it closed, if it did not close on our side. */
  readonly failure: Error | undefined;
  close(): void;
}

export interface ConnectOptions {
  connectTimeoutMs: number;
  writeTimeoutMs: number;
}

/** A readable sentence for a socket or TLS error: its code and message. */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}: ${e.message}` : String((e as Error)?.message ?? err);
}

/**
 * Connects over TCP or TLS (RFC 5425: the certificate is checked against the CA file, or the
 * system's CAs, and the server name).
 * @throws Error when the connection, the handshake or reading the CA file fails, or on timeout.
 */
export function connect(dest: Pick<Destination, 'host' | 'port' | 'transport' | 'caFile' | 'serverName'>, opts: ConnectOptions): Promise<SiemConnection> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    try {
      socket =
        dest.transport === 'tls'
          ? tls.connect({
              host: dest.host,
              port: dest.port,
              servername: dest.serverName ?? (net.isIP(dest.host) ? undefined : dest.host),
              ca: dest.caFile ? fs.readFileSync(dest.caFile) : undefined,
              checkServerIdentity: (_host, cert) => tls.checkServerIdentity(dest.serverName ?? dest.host, cert),
              minVersion: 'TLSv1.2',
            })
          : net.connect({ host: dest.host, port: dest.port });
    } catch (err) {
      reject(err as Error);
      return;
    }
    const ready = dest.transport === 'tls' ? 'secureConnect' : 'connect';
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once(ready, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(wrap(socket, opts));
    });
  });
}

function wrap(socket: net.Socket, opts: ConnectOptions): SiemConnection {
  let open = true;
  let failure: Error | undefined;
  let closedByUs = false;
  const fail = (err: Error) => {
    if (!closedByUs && !failure) failure = err;
    open = false;
  };
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 30_000);
  // A syslog receiver sends nothing; reading keeps a FIN or RST from going unnoticed.
  socket.on('data', () => undefined);
  socket.on('error', fail);
  socket.on('end', () => fail(new Error('the SIEM closed the connection')));
  socket.on('close', () => fail(new Error('the connection closed')));
  return {
    get open() {
      return open && !socket.destroyed;
    },
    get failure() {
      return failure;
    },
    write(bytes) {
      return new Promise<void>((resolve, reject) => {
        if (!open || socket.destroyed) return reject(failure ?? new Error('the connection is closed'));
        // A SIEM that accepts and never reads fills the socket buffers; after the timeout the
        // connection is dropped, so neither memory nor the forwarder waits without bound.
        const timer = setTimeout(() => {
          const err = new Error(`the SIEM read nothing for ${opts.writeTimeoutMs} ms`);
          fail(err);
          socket.destroy(err);
          reject(err);
        }, opts.writeTimeoutMs);
        socket.write(bytes, (err) => {
          clearTimeout(timer);
          if (err) {
            fail(err);
            reject(err);
          } else resolve();
        });
      });
    },
    close() {
      closedByUs = true;
      open = false;
      socket.destroy();
    },
  };
}
