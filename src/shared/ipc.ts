import { z } from 'zod';
import { Segment, Timestamp, UsbId } from './common';
import { DevicePayload, EventTypeSchema, IncidentCategory } from './events';

/** The enforcement state an agent reports: `audit` when the policy only records. */
export const ENFORCEMENT_STATES = ['active', 'degraded', 'audit', 'off', 'unknown'] as const;
export const EnforcementState = z.enum(ENFORCEMENT_STATES);
export type EnforcementState = z.infer<typeof EnforcementState>;

/**
 * Why an agent's enforcement is `degraded`, as stable codes the tray and the console explain:
 * - `device_notices_unavailable`: the OS's USB device notices could not start; a device waits for
 *   the timer (up to 30 s) to be blocked or allowed.
 * - `devices_unreadable`: the OS could not list USB devices.
 * - `controls_not_applied`: a control could not be set or did not read back as set.
 * - `store_error`: the local event log could not record what enforcement did.
 */
export const DEGRADED_REASONS = ['device_notices_unavailable', 'devices_unreadable', 'controls_not_applied', 'store_error'] as const;
export const DegradedReason = z.enum(DEGRADED_REASONS);
export type DegradedReason = z.infer<typeof DegradedReason>;

/**
 * Default IPC endpoints (docs/design.md#ipc). macOS has no `/run`; its sockets live in
 * `/var/run`.
 */
export const DEFAULT_IPC_PATH = {
  posix: '/run/mamori/agent.sock',
  darwin: '/var/run/mamori/agent.sock',
  win32: '\\\\.\\pipe\\mamori-agent',
} as const;

/** The agent's IPC endpoint on a platform (`process.platform`'s names). */
export function defaultIpcPathFor(platform: string): string {
  if (platform === 'win32') return DEFAULT_IPC_PATH.win32;
  return platform === 'darwin' ? DEFAULT_IPC_PATH.darwin : DEFAULT_IPC_PATH.posix;
}

/** Largest IPC line accepted, in bytes. */
export const MAX_IPC_LINE = 64 * 1024;

const NoParams = z.object({}).strict().optional();

/**
 * The tray ↔ agent contract: JSON-RPC 2.0, one object per line. Each method's params and result
 * schema; the agent's server and the tray's client are both derived from this table.
 */
export const IPC_METHODS = {
  status: {
    params: NoParams,
    result: z.object({
      agentId: z.string().nullable(),
      hostname: z.string(),
      segment: Segment.nullable(),
      policyVersion: z.number().int().nullable(),
      enforcement: EnforcementState,
      /** Why `enforcement` is `degraded` (empty otherwise), most telling first. */
      degradedReasons: z.array(DegradedReason).max(DEGRADED_REASONS.length).default([]),
      lastSyncAt: Timestamp.nullable(),
      collectorReachable: z.boolean(),
      pendingEvents: z.number().int().min(0),
      incidentContact: z.string(),
    }),
  },
  recentEvents: {
    params: z
      .object({ limit: z.number().int().min(1).max(200).optional() })
      .strict()
      .optional(),
    result: z.array(z.object({ seq: z.number().int(), at: Timestamp, type: EventTypeSchema, payload: z.unknown() })),
  },
  reportIncident: {
    params: z
      .object({
        category: IncidentCategory,
        description: z.string().trim().min(1).max(4000),
        occurredAt: Timestamp.optional(),
        contact: z.string().max(200).optional(),
      })
      .strict(),
    /**
     * Never refused for volume: `queued: true` when the collector is out of reach or the report
     * waits, merged, in the caller's one queued incident (whose receipt it gets).
     */
    result: z.object({ receipt: z.string(), queued: z.boolean().optional() }),
  },
  requestException: {
    /**
     * The device is never named by the caller: it is the one of the recorded `device.blocked` at
     * `blockedSeq` (the latest when omitted). A field naming a device is refused as unknown.
     */
    params: z
      .object({
        blockedSeq: z.number().int().min(1).optional(),
        reason: z.string().trim().min(1).max(1000),
        minutes: z
          .number()
          .int()
          .min(1)
          .max(7 * 24 * 60),
      })
      .strict(),
    result: z.object({
      requestId: z.string(),
      requestCode: z.string(),
      /** The exact device the request covers. */
      device: z.object({ vendorId: UsbId, productId: UsbId, serial: z.string().optional(), port: z.string().optional() }),
    }),
  },
  redeemUnlockCode: {
    params: z.object({ requestId: z.string().max(100).optional(), code: z.string().trim().min(4).max(40) }).strict(),
    result: z.object({ granted: z.literal(true), device: DevicePayload.partial(), expiresAt: Timestamp }),
  },
  sessionEvent: {
    params: z.object({ kind: z.enum(['lock', 'unlock', 'suspend', 'resume']) }).strict(),
    result: z.object({}),
  },
} as const;

export type IpcMethod = keyof typeof IPC_METHODS;
export type IpcParams<M extends IpcMethod> = z.input<(typeof IPC_METHODS)[M]['params']>;
export type IpcResult<M extends IpcMethod> = z.output<(typeof IPC_METHODS)[M]['result']>;

/** The agent's service interface as seen by the tray; server and client both implement it. */
export type AgentService = {
  [M in IpcMethod]: undefined extends IpcParams<M> ? (params?: IpcParams<M>) => Promise<IpcResult<M>> : (params: IpcParams<M>) => Promise<IpcResult<M>>;
};

/**
 * Mamori's stable IPC error codes, carried in `data.code` (docs/design.md#ipc-errors). Besides the
 * framing ones: `rate_limited` (the caller's write bucket is empty), `not_session_user` (a lock or
 * unlock from anyone but the console session's user), `too_many_connections` (sent once with
 * `id: null` on a refused connection, which then closes).
 */
export const IPC_ERROR_CODES = [
  'parse_error',
  'invalid_request',
  'too_large',
  'method_not_found',
  'invalid_params',
  'no_device',
  'rate_limited',
  'not_enrolled',
  'unlock_refused',
  'not_session_user',
  'too_many_connections',
  'internal',
] as const;
export type IpcErrorCode = (typeof IPC_ERROR_CODES)[number];

/** JSON-RPC error codes used on the wire; `data.code` carries Mamori's stable code. */
export const JSON_RPC_ERRORS = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  application: -32000,
} as const;
