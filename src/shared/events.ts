import { z } from 'zod';
import { Segment, Sha256Hex, Timestamp, UntrustedText } from './common';
import { INCIDENT_CATEGORIES } from './incident-categories';
import { RemovableMediaMode } from './policy';

const text = UntrustedText;

/** The device fields every device event carries (docs/design.md#event-types). All untrusted. */
export const DevicePayload = z.object({
  vendorId: z.string().regex(/^[0-9a-f]{4}$/),
  productId: z.string().regex(/^[0-9a-f]{4}$/),
  serial: text,
  manufacturer: text,
  product: text,
  deviceClass: z.string().regex(/^[0-9a-f]{2}$/),
  port: text,
});
export type DevicePayload = z.infer<typeof DevicePayload>;

const DeviceDecision = DevicePayload.extend({
  /** Why the agent decided as it did (`policy block`, `allowlist`, `exception`, …). */
  reason: text.optional(),
  mode: RemovableMediaMode.optional(),
  /** The interfaces the decision touched, by kernel or OS name. */
  interfaces: z.array(text).max(64).optional(),
});

export { INCIDENT_CATEGORIES };
export const IncidentCategory = z.enum(INCIDENT_CATEGORIES);
export type IncidentCategory = z.infer<typeof IncidentCategory>;

export const LOGIN_SOURCES = ['wtmp', 'btmp', 'security-log', 'session', 'last'] as const;

const LoginPayload = z.object({
  user: text,
  source: z.enum(LOGIN_SOURCES),
  line: text.optional(),
  logonType: z.union([z.number().int(), text]).optional(),
  remoteHost: text.optional(),
  /** When the OS says it happened (UTC); the event's `at` is when the agent recorded it. */
  time: Timestamp.optional(),
  reason: text.optional(),
  sessionSeconds: z.number().int().min(0).optional(),
});

const ExceptionDevice = z.object({
  vendorId: z
    .string()
    .regex(/^[0-9a-f]{4}$/)
    .optional(),
  productId: z
    .string()
    .regex(/^[0-9a-f]{4}$/)
    .optional(),
  serial: text.optional(),
  port: text.optional(),
});

/** Payload schema of every event type; adding a type here adds it everywhere. */
export const EVENT_PAYLOADS = {
  'agent.started': z.object({
    version: text,
    platform: text,
    hostname: text,
    pid: z.number().int().optional(),
  }),
  'agent.stopped': z.object({ reason: text }),
  /** Added after the first design (docs/design.md#departures-from-the-first-design): a degraded probe or skipped input, recorded once per pass. */
  'agent.warning': z.object({
    component: text,
    code: text,
    message: text,
    count: z.number().int().min(0).optional(),
  }),
  'policy.applied': z.object({
    segment: Segment,
    version: z.number().int().min(0),
    mode: RemovableMediaMode,
    issuedAt: Timestamp.optional(),
    /** What the agent's enforcement achieved with it; absent where the agent does not enforce yet. */
    enforcement: z.enum(['active', 'degraded', 'audit', 'off', 'unknown']).optional(),
  }),
  'policy.drift_corrected': z.object({
    control: text,
    expected: text,
    found: text,
    device: DevicePayload.optional(),
  }),
  /** Added after the first design (docs/design.md#departures-from-the-first-design): the agent moved its pinned collector key along a signed rotation. */
  'policy.key_rotated': z.object({
    /** SHA-256 (hex) of the SPKI of the key pinned before, and of the one pinned now. */
    previousKey: Sha256Hex,
    key: Sha256Hex,
    rotatedAt: Timestamp,
  }),
  'tamper.detected': z.object({
    what: text,
    detail: text,
    device: DevicePayload.optional(),
  }),
  'device.attached': DevicePayload,
  'device.detached': DevicePayload,
  'device.blocked': DeviceDecision,
  'device.allowed': DeviceDecision,
  'exception.requested': z.object({
    requestId: text,
    requestCode: text,
    device: ExceptionDevice,
    reason: text,
    minutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60),
  }),
  'exception.granted': z.object({
    requestId: text.optional(),
    device: ExceptionDevice,
    expiresAt: Timestamp,
    via: z.enum(['unlock-code', 'admin', 'enrollment']),
  }),
  'exception.expired': z.object({
    requestId: text.optional(),
    device: ExceptionDevice,
  }),
  'login.success': LoginPayload,
  'login.failure': LoginPayload,
  logout: LoginPayload,
  /** Added after the first design (docs/design.md#departures-from-the-first-design): the boot and shutdown records of wtmp, for the audit trail. */
  'system.boot': z.object({ source: z.enum(LOGIN_SOURCES), time: Timestamp.optional(), kernel: text.optional() }),
  'system.shutdown': z.object({ source: z.enum(LOGIN_SOURCES), time: Timestamp.optional() }),
  'session.lock': LoginPayload.partial({ user: true }),
  'session.unlock': LoginPayload.partial({ user: true }),
  'incident.reported': z.object({
    receipt: text,
    category: IncidentCategory,
    description: z.string().max(4000),
    occurredAt: Timestamp.optional(),
    contact: text.optional(),
    context: z.object({
      hostname: text,
      osUser: text,
      inventoryHash: z.string().max(64),
      recentEvents: z.array(z.object({ seq: z.number().int(), at: Timestamp, type: text, summary: text })).max(50),
    }),
  }),
  'inventory.changed': z.object({
    hash: Sha256Hex,
    previousHash: Sha256Hex.nullable(),
    changes: z.array(z.object({ section: text, summary: text })).max(500),
  }),
} as const;

export type EventType = keyof typeof EVENT_PAYLOADS;
export const EVENT_TYPES = Object.keys(EVENT_PAYLOADS) as EventType[];
export const EventTypeSchema = z.enum(EVENT_TYPES as [EventType, ...EventType[]]);

/** The payload type of one event type. */
export type EventPayload<T extends EventType> = z.output<(typeof EVENT_PAYLOADS)[T]>;

/** A new event before it is chained: what code in the agent appends. */
export type NewEvent = { [T in EventType]: { type: T; payload: z.input<(typeof EVENT_PAYLOADS)[T]> } }[EventType];

/** A stored, chained event as it leaves the agent. */
export const StoredEvent = z.object({
  seq: z.number().int().min(1),
  at: Timestamp,
  type: EventTypeSchema,
  payload: z.unknown(),
  prevHash: Sha256Hex,
  hash: Sha256Hex,
});
export type StoredEvent = z.infer<typeof StoredEvent>;

/** Thrown by `parseEventPayload` for an unknown type or a payload its schema refuses. */
export class EventSchemaError extends Error {
  readonly code = 'invalid_event';
  constructor(message: string) {
    super(message);
    this.name = 'EventSchemaError';
  }
}

/**
 * Validates a payload against its type's schema and returns it as stored (unknown fields
 * stripped, defaults filled).
 * @throws EventSchemaError for an unknown event type or an invalid payload.
 */
export function parseEventPayload(type: string, payload: unknown): unknown {
  if (!Object.prototype.hasOwnProperty.call(EVENT_PAYLOADS, type)) {
    throw new EventSchemaError(`unknown event type: ${JSON.stringify(type).slice(0, 80)}`);
  }
  const result = EVENT_PAYLOADS[type as EventType].safeParse(payload);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new EventSchemaError(`invalid ${type} payload at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}
