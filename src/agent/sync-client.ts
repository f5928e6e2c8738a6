import type { z } from 'zod';
import {
  ErrorBody,
  HEAD_HEADER,
  HTTP_ROUTES,
  routePath,
  type ApprovedException,
  type EnrollRequest,
  type EnrollResponse,
  type HttpRoute,
  type InventorySnapshot,
  type StoredEvent,
} from '../shared';

/** The collector could not be reached, or answered with a server error: try again later. */
export class CollectorUnreachableError extends Error {
  readonly code = 'collector_unreachable';
  constructor(message: string) {
    super(message);
    this.name = 'CollectorUnreachableError';
  }
}

/** The collector's answer was read whole but is not JSON: no network fault explains it. */
export class MalformedResponseError extends CollectorUnreachableError {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedResponseError';
  }
}

/** The collector answered with a 4xx error body; `code` is its stable error code. */
export class CollectorRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { expectedSeq?: number; seq?: number } = {},
  ) {
    super(message);
    this.name = 'CollectorRefusedError';
  }
}

export interface SyncClientOptions {
  baseUrl: string;
  /** Agent id and token once enrolled. */
  agentId?: string;
  agentToken?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** The agent's newest event, sent as `mamori-head` on every call once enrolled. */
  head?: () => { seq: number; hash: string };
}

/** The agent's side of the sync protocol (docs/design.md#sync-protocol). */
export interface SyncClient {
  enroll(request: EnrollRequest): Promise<EnrollResponse>;
  postEvents(events: StoredEvent[]): Promise<number>;
  putInventory(snapshot: InventorySnapshot): Promise<void>;
  /**
   * The policy response as received, unchecked: whether it is well-formed, signed and fresh is
   * `acceptPolicy`'s to judge (a bad one is tampering, not an unreachable collector).
   */
  getPolicy(): Promise<unknown>;
  /** Exceptions an admin approved for this terminal. */
  getApprovedExceptions(): Promise<ApprovedException[]>;
}

/** How to reach one collector. */
interface Connection {
  doFetch: typeof fetch;
  base: string;
  timeoutMs: number;
}

/** Sends one request; a network error or a 5xx is `CollectorUnreachableError`. */
async function send({ doFetch, base, timeoutMs }: Connection, method: string, path: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  let res: Response;
  try {
    res = await doFetch(`${base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new CollectorUnreachableError(`collector ${base} unreachable: ${cause ?? (err as Error).message}`);
  }
  if (res.status >= 500) {
    await res.body?.cancel().catch(() => undefined);
    throw new CollectorUnreachableError(`collector ${base} answered ${res.status}`);
  }
  return res;
}

/** The answer's JSON (null for an empty body). */
async function readJson(base: string, res: Response): Promise<unknown> {
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    // A body cut off on the way is no answer, whatever the status said.
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new CollectorUnreachableError(`collector ${base} answered ${res.status} but its body could not be read: ${cause ?? (err as Error).message}`);
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    const message = `collector ${base} answered ${res.status} with a body that is not JSON`;
    throw res.status < 300 ? new MalformedResponseError(message) : new CollectorUnreachableError(message);
  }
}

/** Builds a client for one collector; every call throws one of the two errors above on failure. */
export function createSyncClient(opts: SyncClientOptions): SyncClient {
  const conn: Connection = { doFetch: opts.fetch ?? fetch, base: opts.baseUrl.replace(/\/+$/, ''), timeoutMs: opts.timeoutMs ?? 30_000 };

  /** Calls one route of `HTTP_ROUTES` (docs/design.md#http-api); resolves to the answer's JSON. */
  async function call(route: HttpRoute, body?: unknown): Promise<unknown> {
    const path = routePath(route, route.auth.kind === 'agent' ? { agentId: enrolledId() } : {});
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.agentToken) headers.authorization = `Bearer ${opts.agentToken}`;
    if (opts.head && opts.agentId) {
      const head = opts.head();
      headers[HEAD_HEADER] = `${head.seq}:${head.hash}`;
    }
    const res = await send(conn, route.method, path, headers, body);
    const json = await readJson(conn.base, res);
    if (res.status >= 400) {
      const parsed = ErrorBody.safeParse(json);
      if (!parsed.success) throw new CollectorRefusedError(res.status, 'unknown', `collector answered ${res.status}`);
      const { code, message, expectedSeq, seq } = parsed.data.error;
      throw new CollectorRefusedError(res.status, code, message, { expectedSeq, seq });
    }
    return json;
  }

  function enrolledId(): string {
    if (!opts.agentId) throw new Error('this agent is not enrolled');
    return opts.agentId;
  }

  /** Reads a 200 answer by the route's own response schema. */
  function answer<S extends z.ZodType>(route: { response: { 200: S } }, value: unknown, what: string): z.output<S> {
    const result = route.response[200].safeParse(value);
    if (!result.success) throw new CollectorUnreachableError(`collector sent an invalid ${what}`);
    return result.data;
  }

  return {
    async enroll(request) {
      return answer(HTTP_ROUTES.enroll, await call(HTTP_ROUTES.enroll, request), 'enrollment response');
    },
    async postEvents(events) {
      return answer(HTTP_ROUTES.postEvents, await call(HTTP_ROUTES.postEvents, { events }), 'acknowledgement').ackSeq;
    },
    async putInventory(snapshot) {
      await call(HTTP_ROUTES.putInventory, snapshot);
    },
    async getPolicy() {
      try {
        // Not read by the route's schema here: acceptPolicy judges the document (see above).
        return await call(HTTP_ROUTES.getPolicy);
      } catch (err) {
        // A policy answer that is not JSON is a malformed document for acceptPolicy to record.
        if (err instanceof MalformedResponseError) return { malformed: err.message };
        throw err;
      }
    },
    async getApprovedExceptions() {
      return answer(HTTP_ROUTES.getApprovedExceptions, await call(HTTP_ROUTES.getApprovedExceptions), 'exception list');
    },
  };
}
