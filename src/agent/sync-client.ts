import { z } from 'zod';
import {
  ApprovedException,
  EnrollResponse,
  ErrorBody,
  EventBatchAck,
  HEAD_HEADER,
  type EnrollRequest,
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

/** Builds a client for one collector; every call throws one of the two errors above on failure. */
export function createSyncClient(opts: SyncClientOptions): SyncClient {
  const doFetch = opts.fetch ?? fetch;
  const base = opts.baseUrl.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 30_000;

  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.agentToken) headers.authorization = `Bearer ${opts.agentToken}`;
    if (opts.head && opts.agentId) {
      const head = opts.head();
      headers[HEAD_HEADER] = `${head.seq}:${head.hash}`;
    }
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
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      // A body cut off on the way is no answer, whatever the status said.
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new CollectorUnreachableError(`collector ${base} answered ${res.status} but its body could not be read: ${cause ?? (err as Error).message}`);
    }
    let json: unknown = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        const message = `collector ${base} answered ${res.status} with a body that is not JSON`;
        throw res.status < 300 ? new MalformedResponseError(message) : new CollectorUnreachableError(message);
      }
    }
    if (res.status >= 400) {
      const parsed = ErrorBody.safeParse(json);
      if (!parsed.success) throw new CollectorRefusedError(res.status, 'unknown', `collector answered ${res.status}`);
      const { code, message, expectedSeq, seq } = parsed.data.error;
      throw new CollectorRefusedError(res.status, code, message, { expectedSeq, seq });
    }
    return json;
  }

  function agentPath(suffix: string): string {
    if (!opts.agentId) throw new Error('this agent is not enrolled');
    return `/api/v1/agents/${encodeURIComponent(opts.agentId)}${suffix}`;
  }

  function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, value: unknown, what: string): T {
    const result = schema.safeParse(value);
    if (!result.success) throw new CollectorUnreachableError(`collector sent an invalid ${what}`);
    return result.data;
  }

  return {
    async enroll(request) {
      return parse(EnrollResponse, await call('POST', '/api/v1/enroll', request), 'enrollment response');
    },
    async postEvents(events) {
      return parse(EventBatchAck, await call('POST', agentPath('/events'), { events }), 'acknowledgement').ackSeq;
    },
    async putInventory(snapshot) {
      await call('PUT', agentPath('/inventory'), snapshot);
    },
    async getPolicy() {
      try {
        return await call('GET', agentPath('/policy'));
      } catch (err) {
        // A policy answer that is not JSON is a malformed document for acceptPolicy to record.
        if (err instanceof MalformedResponseError) return { malformed: err.message };
        throw err;
      }
    },
    async getApprovedExceptions() {
      return parse(z.array(ApprovedException), await call('GET', agentPath('/exceptions')), 'exception list');
    },
  };
}
