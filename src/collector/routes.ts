import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  EnrollRequest,
  EventBatch,
  InventorySnapshot,
  MamoriError,
  PolicyInput,
  Segment,
  EventTypeSchema,
  HEAD_HEADER,
} from '../shared';
import { audit, authenticateAdmin, type Actor, type Role } from './admins';
import { authenticateAgent, enroll, flagRefusedBatch, ingestEvents, outboxState, storeInventory } from './agents';
import type { CollectorContext } from './context';
import { ExportQuery, sendLedger } from './export/http';
import { approvedFor, decideException, listExceptions } from './exceptions';
import { INCIDENT_STATUSES, listIncidents, moveIncident } from './incidents';
import { applyPolicyChange, policyForAgent, policyHistory } from './policies';

/**
 * The first field of `input` that parsing dropped (a key the schema does not know), as its path;
 * null when none was. Compared after parsing, so every object at any depth is checked against
 * exactly the schema that accepted it.
 */
export function droppedField(input: unknown, output: unknown, path: (string | number)[] = []): (string | number)[] | null {
  if (Array.isArray(input) && Array.isArray(output)) {
    for (let i = 0; i < input.length && i < output.length; i++) {
      const found = droppedField(input[i], output[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (!input || typeof input !== 'object' || !output || typeof output !== 'object' || Array.isArray(output)) return null;
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(output, key)) return [...path, key];
    const found = droppedField(value, (output as Record<string, unknown>)[key], [...path, key]);
    if (found) return found;
  }
  return null;
}

/**
 * Parses with a schema. A refusal is a 400 naming the field; so is a field the schema does not
 * know, at any depth (it is refused by name, never silently dropped).
 * @throws MamoriError validation_failed.
 */
export function parse<T>(schema: z.ZodType<T>, value: unknown, what = 'body'): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new MamoriError('validation_failed', `${what}${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`);
  }
  const dropped = droppedField(value, result.data);
  if (dropped) throw new MamoriError('validation_failed', `${what}.${dropped.join('.')}: unknown field ${JSON.stringify(String(dropped[dropped.length - 1]))}`);
  return result.data;
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

const AgentParams = z.object({ agentId: z.string().min(1).max(100) });

/** The `mamori-head` header of an agent call, when it sent one (a repeated header is refused). */
function headHeader(request: FastifyRequest): string | undefined {
  const value = request.headers[HEAD_HEADER];
  if (Array.isArray(value)) throw new MamoriError('validation_failed', `header ${HEAD_HEADER}: given more than once`);
  return value;
}

/** Authenticates the agent of the path, noting the head it reports. */
function agentOf(ctx: CollectorContext, request: FastifyRequest, agentId: string) {
  return authenticateAgent(ctx.db, agentId, bearer(request), ctx.clock, headHeader(request));
}

/** The seq of the first event of a body, when it has one, for the flag of a refused batch. */
function firstSeq(body: unknown): number | undefined {
  const events = (body as { events?: unknown } | null)?.events;
  const seq = Array.isArray(events) ? (events[0] as { seq?: unknown } | null)?.seq : undefined;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
}

/** The seq named by a refusal's path (`body.events.3.…`), when the body has that event. */
function refusedSeq(err: MamoriError, body: unknown): number | undefined {
  const match = /^body\.events\.(\d+)/.exec(err.message);
  const events = (body as { events?: unknown } | null)?.events;
  if (!match || !Array.isArray(events)) return undefined;
  const seq = (events[Number(match[1])] as { seq?: unknown } | null)?.seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
}

/** The routes terminals call. */
export function agentRoutes(app: FastifyInstance, ctx: CollectorContext): void {
  app.post('/api/v1/enroll', async (request) => {
    const body = parse(EnrollRequest, request.body);
    return enroll(ctx.db, ctx.key, body, ctx.clock, request.ip);
  });

  app.post('/api/v1/agents/:agentId/events', async (request) => {
    const { agentId } = parse(AgentParams, request.params, 'path');
    await agentOf(ctx, request, agentId);
    let events;
    try {
      events = parse(EventBatch, request.body).events;
    } catch (err) {
      // An authenticated terminal's batch that can never be accepted silences it: flag it.
      if (err instanceof MamoriError) await flagRefusedBatch(ctx.db, agentId, new MamoriError(err.code, err.message, { seq: refusedSeq(err, request.body) }), firstSeq(request.body));
      throw err;
    }
    const ackSeq = await ingestEvents(ctx.db, ctx.engine, agentId, events, ctx.clock);
    return { ackSeq };
  });

  app.put('/api/v1/agents/:agentId/inventory', async (request, reply) => {
    const { agentId } = parse(AgentParams, request.params, 'path');
    await agentOf(ctx, request, agentId);
    await storeInventory(ctx.db, agentId, parse(InventorySnapshot, request.body), ctx.clock);
    return reply.code(204).send();
  });

  app.get('/api/v1/agents/:agentId/policy', async (request) => {
    const { agentId } = parse(AgentParams, request.params, 'path');
    const agent = await agentOf(ctx, request, agentId);
    return policyForAgent(ctx.db, ctx.key, agent.segment as Segment, ctx.clock);
  });

  // Exceptions admins approved for this terminal; the agent applies them at its next sync.
  app.get('/api/v1/agents/:agentId/exceptions', async (request) => {
    const { agentId } = parse(AgentParams, request.params, 'path');
    await agentOf(ctx, request, agentId);
    return approvedFor(ctx.db, agentId, ctx.clock.now());
  });
}

/** Resolves the admin behind a request and checks the role; `admin` may do everything. */
async function requireRole(ctx: CollectorContext, request: FastifyRequest, allowed: readonly Role[]): Promise<Actor> {
  const { username, role } = await authenticateAdmin(ctx.db, bearer(request));
  if (!allowed.includes(role)) throw new MamoriError('forbidden', `the ${role} role may not do this`);
  return { username, role, address: request.ip };
}

const READERS = ['admin', 'auditor'] as const;
/** A query or body that takes no fields: any field is refused by name. */
const NoFields = z.object({});
const ADMINS = ['admin'] as const;

const EventsQuery = z.object({
  agentId: z.string().max(100).optional(),
  type: EventTypeSchema.optional(),
  since: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
});

/** The routes admins and auditors call with their API token. */
export function adminRoutes(app: FastifyInstance, ctx: CollectorContext): void {
  app.get('/api/v1/admin/terminals', async (request) => {
    await requireRole(ctx, request, READERS);
    parse(NoFields, request.query, 'query');
    const rows = await ctx.db.selectFrom('agents').selectAll().orderBy('hostname').orderBy('id').execute();
    return rows.map((a) => ({
      agentId: a.id,
      hostname: a.hostname,
      segment: a.segment,
      enrolledAt: a.enrolled_at,
      lastSeen: a.last_seen,
      policyVersion: a.policy_version === null ? null : Number(a.policy_version),
      enforcement: a.enforcement,
      ackSeq: Number(a.ack_seq),
      chainBroken: a.chain_broken_seq === null ? null : Number(a.chain_broken_seq),
      chainBrokenReason: a.chain_broken_seq === null ? null : a.chain_broken_reason,
      headSeq: a.head_seq === null ? null : Number(a.head_seq),
      ...outboxState(a),
      agentVersion: a.agent_version,
      lastUser: a.last_user,
    }));
  });

  app.get('/api/v1/admin/events', async (request) => {
    const actor = await requireRole(ctx, request, READERS);
    const q = parse(EventsQuery, request.query, 'query');
    let query = ctx.db.selectFrom('events').selectAll().orderBy('agent_id').orderBy('seq').limit(q.limit);
    if (q.agentId) query = query.where('agent_id', '=', q.agentId);
    if (q.type) query = query.where('type', '=', q.type);
    if (q.since !== undefined) query = query.where('seq', '>', q.since);
    const rows = await query.execute();
    await audit(ctx.db, actor, 'events.read', q.agentId ?? '*', { type: q.type ?? null, since: q.since ?? null, count: rows.length });
    return rows.map((r) => ({ agentId: r.agent_id, seq: Number(r.seq), at: r.at, type: r.type, payload: JSON.parse(r.payload), prevHash: r.prev_hash, hash: r.hash, receivedAt: r.received_at }));
  });

  app.get('/api/v1/admin/inventory/export', async (request, reply) => {
    const actor = await requireRole(ctx, request, READERS);
    return sendLedger(ctx, reply, actor, parse(ExportQuery, request.query, 'query'));
  });

  app.get('/api/v1/admin/policies/:segment', async (request) => {
    await requireRole(ctx, request, ADMINS);
    const { segment } = parse(z.object({ segment: Segment }), request.params, 'path');
    const history = await policyHistory(ctx.db, segment);
    return { ...history[0]!.policy, history: history.map((h) => ({ version: h.policy.version, issuedAt: h.policy.issuedAt, by: h.createdBy, mode: h.policy.removableMedia.mode })) };
  });

  app.put('/api/v1/admin/policies/:segment', async (request) => {
    const actor = await requireRole(ctx, request, ADMINS);
    const { segment } = parse(z.object({ segment: Segment }), request.params, 'path');
    const body = (request.body ?? {}) as Record<string, unknown>;
    const input = parse(PolicyInput, { ...body, segment: body.segment ?? segment });
    if (input.segment !== segment) throw new MamoriError('bad_request', `the document is for segment ${input.segment}, the path says ${segment}`);
    const { after } = await applyPolicyChange(ctx.db, ctx.key, input, actor);
    return after;
  });

  app.get('/api/v1/admin/incidents', async (request) => {
    const actor = await requireRole(ctx, request, READERS);
    const q = parse(z.object({ status: z.enum(INCIDENT_STATUSES).optional() }), request.query, 'query');
    const rows = await listIncidents(ctx.db, q.status);
    await audit(ctx.db, actor, 'incidents.read', q.status ?? '*', { count: rows.length });
    return rows;
  });

  app.patch('/api/v1/admin/incidents/:id', async (request) => {
    const actor = await requireRole(ctx, request, ADMINS);
    const { id } = parse(z.object({ id: z.string().min(1).max(100) }), request.params, 'path');
    const { status } = parse(z.object({ status: z.enum(INCIDENT_STATUSES) }), request.body);
    const move = await moveIncident(ctx.db, id, status, actor.username);
    await audit(ctx.db, actor, 'incident.status', id, move);
    return { id, status };
  });

  app.get('/api/v1/admin/exceptions', async (request) => {
    const actor = await requireRole(ctx, request, ADMINS);
    const q = parse(z.object({ status: z.enum(['pending', 'approved', 'denied', 'granted']).optional() }), request.query, 'query');
    const rows = await listExceptions(ctx.db, { status: q.status });
    await audit(ctx.db, actor, 'exceptions.read', q.status ?? '*', { count: rows.length });
    return rows;
  });

  app.post('/api/v1/admin/exceptions/:id/approve', async (request) => {
    const actor = await requireRole(ctx, request, ADMINS);
    const { id } = parse(z.object({ id: z.string().min(1).max(100) }), request.params, 'path');
    const { minutes } = parse(z.object({ minutes: z.number().int().min(1).max(7 * 24 * 60) }), request.body ?? {});
    const { expiresAt } = await decideException(ctx.db, id, 'approved', actor.username, minutes, ctx.clock.now());
    await audit(ctx.db, actor, 'exception.approve', id, { minutes, expiresAt });
    return { id, status: 'approved', expiresAt };
  });

  app.post('/api/v1/admin/exceptions/:id/deny', async (request) => {
    const actor = await requireRole(ctx, request, ADMINS);
    const { id } = parse(z.object({ id: z.string().min(1).max(100) }), request.params, 'path');
    parse(NoFields, request.body ?? {});
    await decideException(ctx.db, id, 'denied', actor.username, undefined, ctx.clock.now());
    await audit(ctx.db, actor, 'exception.deny', id);
    return { id, status: 'denied' };
  });

  app.get('/api/v1/admin/audit', async (request) => {
    await requireRole(ctx, request, READERS);
    const q = parse(z.object({ limit: z.coerce.number().int().min(1).max(5000).default(500) }), request.query, 'query');
    const rows = await ctx.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({ id: Number(r.id), at: r.at, actor: r.actor, role: r.role, action: r.action, target: r.target, detail: JSON.parse(r.detail), address: r.address }));
  });
}
