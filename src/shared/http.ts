import { z } from 'zod';
import { Segment } from './common';
import type { ErrorCode } from './errors';
import { EventTypeSchema } from './events';
import { InventorySnapshot } from './inventory';
import { Policy, PolicyInput } from './policy';
import { MAX_UNLOCK_MINUTES } from './unlock';
import { ApprovedException, EnrollRequest, EnrollResponse, EventBatch, EventBatchAck, HEAD_HEADER, PolicyResponse } from './sync';

// The HTTP API as data (docs/design.md#http-api): each route's method, path, who may call it, its
// request and answer schemas and the error codes it answers with. The collector registers its API
// routes from this table, the agent's sync client builds its calls from it, and the OpenAPI
// document is made from it. Pure: nothing here may import fastify or the collector.

/**
 * Who may call a route: anyone; the agent whose id is in the path (`Authorization: Bearer
 * <agentToken>`); or an API token of one of the roles (`admin` may do everything).
 */
export type RouteAuth = { kind: 'none' } | { kind: 'agent' } | { kind: 'roles'; roles: readonly ('admin' | 'auditor')[] };

/** One route of the HTTP API. */
export interface HttpRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  /** The path with `{param}` placeholders (`/api/v1/agents/{agentId}/events`). */
  path: string;
  /** One line for the OpenAPI document. */
  summary: string;
  auth: RouteAuth;
  params?: z.ZodType;
  query?: z.ZodType;
  /**
   * The JSON body. With `emptyBody`, a request without one is read as `{}` (the admin decision
   * routes take `{}` or no body).
   */
  body?: z.ZodType;
  emptyBody?: boolean;
  /** Request headers a route reads (other headers pass). */
  headers?: z.ZodType;
  /** The answer by status: a schema of the JSON body, `null` for no body, `'file'` for a download. */
  response: Record<number, z.ZodType | null | 'file'>;
  /** The error codes the route answers with (each `{"error": {"code", "message"}}`, `ErrorBody`). */
  errors: readonly ErrorCode[];
}

const READERS = { kind: 'roles', roles: ['admin', 'auditor'] } as const;
const ADMINS = { kind: 'roles', roles: ['admin'] } as const;
const AGENT = { kind: 'agent' } as const;
const ANYONE = { kind: 'none' } as const;

/** The path of every agent route: the collector's id of the terminal. */
export const AgentParams = z.object({ agentId: z.string().min(1).max(100) });
/** A path naming an incident or an exception request by id. */
const IdParams = z.object({ id: z.string().min(1).max(100) });
const SegmentParams = z.object({ segment: Segment });
/** A query or body that takes no fields: any field is refused by name. */
const NoFields = z.object({});

/** The header every agent call carries once enrolled (docs/design.md#sync-trust). */
const AgentHeaders = z.looseObject({ [HEAD_HEADER]: z.string().optional() });

const AGENT_ERRORS = ['validation_failed', 'unauthorized', 'forbidden', 'rate_limited'] as const;
const ADMIN_ERRORS = ['validation_failed', 'unauthorized', 'forbidden', 'rate_limited'] as const;

/** `GET /api/v1/admin/terminals`: one terminal (docs/design.md#admin-routes). */
export const TerminalRow = z.object({
  agentId: z.string(),
  hostname: z.string(),
  segment: z.string(),
  enrolledAt: z.string(),
  lastSeen: z.string().nullable(),
  policyVersion: z.number().nullable(),
  enforcement: z.string().nullable(),
  ackSeq: z.number(),
  /** The first seq that did not verify, or null. */
  chainBroken: z.number().nullable(),
  chainBrokenReason: z.string().nullable(),
  headSeq: z.number().nullable(),
  pendingEvents: z.number().nullable(),
  stalled: z.boolean(),
  agentVersion: z.string().nullable(),
  lastUser: z.string().nullable(),
});
export type TerminalRow = z.infer<typeof TerminalRow>;

/** `GET /api/v1/admin/events` query. */
export const EventsQuery = z.object({
  agentId: z.string().max(100).optional(),
  type: EventTypeSchema.optional(),
  since: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
});

/** `GET /api/v1/admin/events`: one stored event. */
export const EventRow = z.object({
  agentId: z.string(),
  seq: z.number(),
  at: z.string(),
  type: z.string(),
  payload: z.unknown(),
  prevHash: z.string(),
  hash: z.string(),
  receivedAt: z.string(),
});

/** The ledger export's query: `format`, `segment`, `lang` (docs/design.md#ledger-export). */
export const LedgerExportQuery = z.object({
  format: z.enum(['csv', 'xlsx', 'json']).default('csv'),
  segment: Segment.optional(),
  lang: z.enum(['ja', 'en']).default('ja'),
});

/** `GET /api/v1/admin/policies/{segment}`: the signed policy and its versions, newest first. */
export const PolicyWithHistory = Policy.extend({
  history: z.array(z.object({ version: z.number(), issuedAt: z.string(), by: z.string(), mode: z.string() })),
});

export const INCIDENT_STATUSES = ['new', 'investigating', 'closed'] as const;
export const IncidentStatus = z.enum(INCIDENT_STATUSES);

/** `GET /api/v1/admin/incidents`: one incident; `id` is `<agentId>:<receipt>`. */
export const IncidentRow = z.object({
  id: z.string(),
  receipt: z.string(),
  agentId: z.string(),
  hostname: z.string(),
  segment: z.string(),
  category: z.string(),
  description: z.string(),
  occurredAt: z.string().nullable(),
  contact: z.string().nullable(),
  context: z.unknown(),
  reportedAt: z.string(),
  status: z.string(),
  updatedAt: z.string(),
  updatedBy: z.string().nullable(),
});

export const EXCEPTION_STATUSES = ['pending', 'approved', 'denied', 'granted'] as const;

/** `GET /api/v1/admin/exceptions`: one exception request. */
export const ExceptionRow = z.object({
  id: z.string(),
  agentId: z.string(),
  hostname: z.string(),
  segment: z.string(),
  requestCode: z.string(),
  device: z.unknown(),
  reason: z.string(),
  minutes: z.number(),
  requestedAt: z.string(),
  status: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  expiresAt: z.string().nullable(),
});

/** `GET /api/v1/admin/audit`: one audit entry (docs/design.md#audit-log-actions). */
export const AuditRow = z.object({
  id: z.number(),
  at: z.string(),
  actor: z.string(),
  role: z.string(),
  action: z.string(),
  target: z.string(),
  detail: z.unknown(),
  address: z.string(),
});

/** Every route of the HTTP API, by name. */
export const HTTP_ROUTES = {
  health: {
    method: 'GET',
    path: '/healthz',
    summary: 'The collector answers',
    auth: ANYONE,
    response: { 200: z.object({ status: z.literal('ok') }) },
    errors: [],
  },
  openApi: {
    method: 'GET',
    path: '/api/v1/openapi.json',
    summary: 'This API as an OpenAPI 3.1 document',
    auth: ANYONE,
    response: { 200: z.record(z.string(), z.unknown()) },
    errors: [],
  },
  enroll: {
    method: 'POST',
    path: '/api/v1/enroll',
    summary: 'Enrolls a terminal with an enrollment token',
    auth: ANYONE,
    body: EnrollRequest,
    response: { 200: EnrollResponse },
    errors: ['validation_failed', 'token_invalid', 'payload_too_large', 'rate_limited'],
  },
  postEvents: {
    method: 'POST',
    path: '/api/v1/agents/{agentId}/events',
    summary: "Stores a batch of the agent's events, all or nothing",
    auth: AGENT,
    params: AgentParams,
    headers: AgentHeaders,
    body: EventBatch,
    response: { 200: EventBatchAck },
    errors: [...AGENT_ERRORS, 'seq_conflict', 'payload_too_large', 'chain_broken'],
  },
  putInventory: {
    method: 'PUT',
    path: '/api/v1/agents/{agentId}/inventory',
    summary: "Stores the terminal's inventory snapshot",
    auth: AGENT,
    params: AgentParams,
    headers: AgentHeaders,
    body: InventorySnapshot,
    response: { 204: null },
    errors: [...AGENT_ERRORS, 'payload_too_large'],
  },
  getPolicy: {
    method: 'GET',
    path: '/api/v1/agents/{agentId}/policy',
    summary: "The signed policy of the agent's segment, with freshness and key rotations",
    auth: AGENT,
    params: AgentParams,
    headers: AgentHeaders,
    response: { 200: PolicyResponse },
    errors: AGENT_ERRORS,
  },
  getApprovedExceptions: {
    method: 'GET',
    path: '/api/v1/agents/{agentId}/exceptions',
    summary: 'Approvals for this terminal not yet expired',
    auth: AGENT,
    params: AgentParams,
    headers: AgentHeaders,
    response: { 200: z.array(ApprovedException) },
    errors: AGENT_ERRORS,
  },
  listTerminals: {
    method: 'GET',
    path: '/api/v1/admin/terminals',
    summary: 'Every terminal, by host name',
    auth: READERS,
    query: NoFields,
    response: { 200: z.array(TerminalRow) },
    errors: ADMIN_ERRORS,
  },
  listEvents: {
    method: 'GET',
    path: '/api/v1/admin/events',
    summary: 'Stored events by agent and seq (audited events.read)',
    auth: READERS,
    query: EventsQuery,
    response: { 200: z.array(EventRow) },
    errors: ADMIN_ERRORS,
  },
  exportLedger: {
    method: 'GET',
    path: '/api/v1/admin/inventory/export',
    summary: 'The ledger as CSV, XLSX or JSON (audited inventory.export)',
    auth: READERS,
    query: LedgerExportQuery,
    response: { 200: 'file' },
    errors: ADMIN_ERRORS,
  },
  getSegmentPolicy: {
    method: 'GET',
    path: '/api/v1/admin/policies/{segment}',
    summary: "A segment's signed policy and its version history",
    auth: ADMINS,
    params: SegmentParams,
    response: { 200: PolicyWithHistory },
    errors: ADMIN_ERRORS,
  },
  putSegmentPolicy: {
    method: 'PUT',
    path: '/api/v1/admin/policies/{segment}',
    summary: "Signs the next version of a segment's policy (audited policy.change)",
    auth: ADMINS,
    params: SegmentParams,
    body: PolicyInput,
    response: { 200: Policy },
    errors: [...ADMIN_ERRORS, 'bad_request', 'payload_too_large'],
  },
  listIncidents: {
    method: 'GET',
    path: '/api/v1/admin/incidents',
    summary: 'Incidents, newest first (audited incidents.read)',
    auth: READERS,
    query: z.object({ status: IncidentStatus.optional() }),
    response: { 200: z.array(IncidentRow) },
    errors: ADMIN_ERRORS,
  },
  moveIncident: {
    method: 'PATCH',
    path: '/api/v1/admin/incidents/{id}',
    summary: 'Moves an incident forward (audited incident.status)',
    auth: ADMINS,
    params: IdParams,
    body: z.object({ status: IncidentStatus }),
    response: { 200: z.object({ id: z.string(), status: IncidentStatus }) },
    errors: [...ADMIN_ERRORS, 'bad_request', 'not_found'],
  },
  listExceptions: {
    method: 'GET',
    path: '/api/v1/admin/exceptions',
    summary: 'Exception requests, newest first (audited exceptions.read)',
    auth: ADMINS,
    query: z.object({ status: z.enum(EXCEPTION_STATUSES).optional() }),
    response: { 200: z.array(ExceptionRow) },
    errors: ADMIN_ERRORS,
  },
  approveException: {
    method: 'POST',
    path: '/api/v1/admin/exceptions/{id}/approve',
    summary: 'Approves a pending request for minutes from now (audited exception.approve)',
    auth: ADMINS,
    params: IdParams,
    body: z.object({ minutes: z.number().int().min(1).max(MAX_UNLOCK_MINUTES) }),
    emptyBody: true,
    response: { 200: z.object({ id: z.string(), status: z.literal('approved'), expiresAt: z.string().nullable() }) },
    errors: [...ADMIN_ERRORS, 'bad_request', 'not_found'],
  },
  denyException: {
    method: 'POST',
    path: '/api/v1/admin/exceptions/{id}/deny',
    summary: 'Denies a pending request (audited exception.deny)',
    auth: ADMINS,
    params: IdParams,
    body: NoFields,
    emptyBody: true,
    response: { 200: z.object({ id: z.string(), status: z.literal('denied') }) },
    errors: [...ADMIN_ERRORS, 'bad_request', 'not_found'],
  },
  listAudit: {
    method: 'GET',
    path: '/api/v1/admin/audit',
    summary: 'The audit log, newest first',
    auth: READERS,
    query: z.object({ limit: z.coerce.number().int().min(1).max(5000).default(500) }),
    response: { 200: z.array(AuditRow) },
    errors: ADMIN_ERRORS,
  },
  metrics: {
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus metrics (text format): terminals, ingest, outbox and forwarding lag',
    auth: READERS,
    query: NoFields,
    response: { 200: 'file' },
    errors: ADMIN_ERRORS,
  },
} as const satisfies Record<string, HttpRoute>;

export type HttpRouteName = keyof typeof HTTP_ROUTES;

/**
 * A route's path with its `{param}` placeholders filled in, each percent-encoded.
 * @throws Error when a placeholder has no value (a bug in the caller, not bad input).
 */
export function routePath(route: HttpRoute, params: Record<string, string> = {}): string {
  return route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`${route.method} ${route.path}: no value for {${name}}`);
    return encodeURIComponent(value);
  });
}
