import { z } from 'zod';
import { IPC_METHODS, JSON_RPC_ERRORS, MAX_IPC_LINE, type AgentService, type IpcMethod } from './ipc';

/**
 * JSON-RPC 2.0 framing for the tray ↔ agent channel: one JSON object per line. The server and the
 * client proxy both live here so they cannot drift; the transports (Unix socket, named pipe, an
 * in-memory pair for tests) are supplied by each process.
 */

/** A line transport: send one line, receive lines, close. */
export interface LineTransport {
  send(line: string): void;
  onLine(listener: (line: string) => void): void;
  onClose(listener: () => void): void;
  close(): void;
}

/** An error returned over IPC: the JSON-RPC code plus Mamori's stable `data.code`. */
export class IpcError extends Error {
  constructor(
    readonly rpcCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'IpcError';
  }
}

const RpcRequest = z.object({
  jsonrpc: z.literal('2.0'),
  id: z.union([z.string().max(64), z.number().int()]).optional(),
  method: z.string().max(64),
  params: z.unknown().optional(),
});

const RpcResponse = z.object({
  jsonrpc: z.literal('2.0'),
  id: z.union([z.string(), z.number(), z.null()]),
  result: z.unknown().optional(),
  error: z.object({ code: z.number(), message: z.string(), data: z.object({ code: z.string() }).partial().optional() }).optional(),
});

function errorResponse(id: unknown, rpcCode: number, code: string, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code: rpcCode, message, data: { code } } });
}

/**
 * Handles one request line against a service and returns the response line (or null for a
 * notification). Params are validated against the contract before the service sees them; unknown
 * methods and unknown fields are refused.
 */
export async function handleIpcLine(service: AgentService, line: string): Promise<string | null> {
  if (line.length > MAX_IPC_LINE) {
    return errorResponse(null, JSON_RPC_ERRORS.invalidRequest, 'too_large', 'request line too long');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return errorResponse(null, JSON_RPC_ERRORS.parseError, 'parse_error', 'request is not JSON');
  }
  const request = RpcRequest.safeParse(raw);
  if (!request.success) {
    return errorResponse((raw as { id?: unknown })?.id, JSON_RPC_ERRORS.invalidRequest, 'invalid_request', 'not a JSON-RPC 2.0 request');
  }
  const { id, method, params } = request.data;
  if (!Object.prototype.hasOwnProperty.call(IPC_METHODS, method)) {
    return errorResponse(id, JSON_RPC_ERRORS.methodNotFound, 'method_not_found', `no method ${method}`);
  }
  const contract = IPC_METHODS[method as IpcMethod];
  const parsed = contract.params.safeParse(params ?? undefined);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return errorResponse(id, JSON_RPC_ERRORS.invalidParams, 'invalid_params', `${issue?.path.join('.') || 'params'}: ${issue?.message ?? 'invalid'}`);
  }
  try {
    const handler = service[method as IpcMethod] as (p: unknown) => Promise<unknown>;
    const result = contract.result.parse(await handler(parsed.data));
    return id === undefined ? null : JSON.stringify({ jsonrpc: '2.0', id, result });
  } catch (err) {
    if (err instanceof IpcError) return errorResponse(id, err.rpcCode, err.code, err.message);
    const code = (err as { code?: unknown }).code;
    return errorResponse(id, JSON_RPC_ERRORS.internal, typeof code === 'string' ? code : 'internal', 'the agent could not do that');
  }
}

/**
 * A client proxy with the same interface as the agent's service. Each call rejects with IpcError
 * when the agent answers with an error, and with IpcError `disconnected` when the channel closes.
 */
export function createIpcClient(transport: LineTransport, timeoutMs = 15_000): AgentService & { close(): void } {
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  transport.onLine((line) => {
    const parsed = RpcResponse.safeParse(
      (() => {
        try {
          return JSON.parse(line);
        } catch {
          return null;
        }
      })(),
    );
    if (!parsed.success || typeof parsed.data.id !== 'number') return;
    const call = pending.get(parsed.data.id);
    if (!call) return;
    pending.delete(parsed.data.id);
    clearTimeout(call.timer);
    const { error, result } = parsed.data;
    if (error) call.reject(new IpcError(error.code, error.data?.code ?? 'error', error.message));
    else call.resolve(result);
  });
  transport.onClose(() => {
    for (const [id, call] of pending) {
      clearTimeout(call.timer);
      call.reject(new IpcError(JSON_RPC_ERRORS.internal, 'disconnected', 'the agent closed the connection'));
      pending.delete(id);
    }
  });
  function call(method: IpcMethod, params: unknown): Promise<unknown> {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new IpcError(JSON_RPC_ERRORS.internal, 'timeout', `the agent did not answer ${method}`));
      }, timeoutMs);
      pending.set(id, { resolve: (v) => resolve(IPC_METHODS[method].result.parse(v)), reject, timer });
      transport.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    });
  }
  const proxy = Object.fromEntries((Object.keys(IPC_METHODS) as IpcMethod[]).map((m) => [m, (params: unknown) => call(m, params)])) as unknown as AgentService;
  return { ...proxy, close: () => transport.close() };
}

/** Two connected in-memory transports, for contract tests. */
export function createMemoryTransportPair(): [LineTransport, LineTransport] {
  type Side = { lines: ((l: string) => void)[]; closes: (() => void)[]; closed: boolean };
  const a: Side = { lines: [], closes: [], closed: false };
  const b: Side = { lines: [], closes: [], closed: false };
  const make = (self: Side, peer: Side): LineTransport => ({
    send: (line) => {
      if (!self.closed) queueMicrotask(() => peer.lines.forEach((l) => l(line)));
    },
    onLine: (l) => void self.lines.push(l),
    onClose: (l) => void self.closes.push(l),
    close: () => {
      for (const side of [self, peer]) {
        if (side.closed) continue;
        side.closed = true;
        side.closes.forEach((l) => l());
      }
    },
  });
  return [make(a, b), make(b, a)];
}

/** The part of a Node socket (or pipe) a line transport needs; duck-typed so shared stays pure. */
export interface LineStream {
  setEncoding(encoding: 'utf8'): unknown;
  on(event: 'data', listener: (chunk: string) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  write(data: string): unknown;
  end(): unknown;
  destroy(): unknown;
  readonly destroyed: boolean;
}

/**
 * Wraps a socket or pipe as a line transport, for the agent's server and the tray's client alike.
 * A peer that sends a line longer than the limit is disconnected rather than buffered.
 */
export function streamLineTransport(stream: LineStream): LineTransport {
  let buffered = '';
  const lineListeners: ((line: string) => void)[] = [];
  const closeListeners: (() => void)[] = [];
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) lineListeners.forEach((l) => l(line));
    }
    if (buffered.length > MAX_IPC_LINE) stream.destroy();
  });
  stream.on('close', () => closeListeners.forEach((l) => l()));
  stream.on('error', () => undefined);
  return {
    send: (line) => {
      if (!stream.destroyed) stream.write(`${line}\n`);
    },
    onLine: (l) => void lineListeners.push(l),
    onClose: (l) => void closeListeners.push(l),
    close: () => void stream.end(),
  };
}
