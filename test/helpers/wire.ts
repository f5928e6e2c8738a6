import net from 'node:net';

/**
 * HTTP/1.1 written byte by byte on a TCP socket, so a test can send what no well-behaved client
 * would: raw UTF-8 or invalid bytes in the path and headers, NUL, duplicate headers, a wrong
 * Content-Length. Every request asks the server to close the connection, and the answer is read
 * until it does.
 */
export interface WireRequest {
  method: string;
  /** The request target as bytes (a latin1 string: one character per byte). */
  path: string;
  /** Header lines as bytes (latin1 strings); duplicates allowed. `Connection: close` is added. */
  headers: [string, string][];
  body?: Buffer;
  /** `Content-Length` from the body (default), none, or a stated (possibly wrong) value. */
  contentLength?: 'auto' | 'none' | string;
  /** Source address on the loopback network (127.0.0.0/8), to spread per-address limits. */
  localAddress?: string;
}

export interface WireAnswer {
  /** The status of the first response, or null when the connection closed without one. */
  status: number | null;
  headers: Record<string, string>;
  /** Everything after the head (not de-chunked). */
  body: Buffer;
  /** A socket error, if one happened (a reset after the answer is normal for some requests). */
  error?: string;
  ms: number;
}

/** The bytes of a request. */
export function encodeRequest(req: WireRequest): Buffer {
  const lines = [`${req.method} ${req.path} HTTP/1.1`];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  lines.push('Connection: close');
  const cl = req.contentLength ?? 'auto';
  if (cl === 'auto' && req.body) lines.push(`Content-Length: ${req.body.length}`);
  else if (cl !== 'auto' && cl !== 'none') lines.push(`Content-Length: ${cl}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), req.body ?? Buffer.alloc(0)]);
}

/** Parses the first response out of what the server sent. */
export function parseAnswer(raw: Buffer): Pick<WireAnswer, 'status' | 'headers' | 'body'> {
  const end = raw.indexOf('\r\n\r\n');
  const head = (end < 0 ? raw : raw.subarray(0, end)).toString('latin1');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: match ? Number(match[1]) : null, headers, body: end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4) };
}

/** Sends raw bytes to 127.0.0.1:port and resolves with the answer once the server closes. */
export function sendBytes(port: number, bytes: Buffer, opts: { localAddress?: string; timeoutMs?: number; halfClose?: boolean } = {}): Promise<WireAnswer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let done = false;
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: opts.localAddress });
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseAnswer(Buffer.concat(chunks)), error, ms: performance.now() - started });
    };
    const timer = setTimeout(() => {
      error = `no close within ${opts.timeoutMs ?? 30_000} ms`;
      finish();
    }, opts.timeoutMs ?? 30_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
      finish();
    });
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(bytes);
      if (opts.halfClose) socket.end();
    });
  });
}

/** Encodes and sends one request. */
export function send(port: number, req: WireRequest, timeoutMs?: number): Promise<WireAnswer> {
  return sendBytes(port, encodeRequest(req), { localAddress: req.localAddress, timeoutMs });
}

/** A string's UTF-8 bytes as a latin1 string, for a path or header that carries them raw. */
export const utf8Bytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

/** Percent-encodes every byte of a string's UTF-8 outside unreserved characters (lone surrogates as U+FFFD). */
export const percent = (text: string): string =>
  [...Buffer.from(text, 'utf8')]
    .map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
