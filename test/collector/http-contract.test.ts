import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { addAdmin, type Actor } from '../../src/collector/admins';
import { decideException } from '../../src/collector/exceptions';
import { moveIncident } from '../../src/collector/incidents';
import { fastifyUrl, serializerCompiler } from '../../src/collector/routes/api/route';
import { createCollector, type Collector } from '../../src/collector/server';
import { HTTP_ROUTES, HTTP_STATUS, fixedClock, routePath, type HttpRoute } from '../../src/shared';
import { PG_URL, createEngineDatabase } from '../helpers/pg';
import { listRoutes } from '../helpers/routes';

// The HTTP API is one table (src/shared/http.ts): the collector serves exactly its routes, the
// OpenAPI document describes exactly them, and the domain calls both API and console use write
// their audit entry with the change, or neither.

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
const ROUTES = Object.entries(HTTP_ROUTES) as [string, HttpRoute][];

describe('the route table', () => {
  it('fills a path with its params, percent-encoded, and refuses a missing one', () => {
    expect(routePath(HTTP_ROUTES.postEvents, { agentId: 'a/b c' })).toBe('/api/v1/agents/a%2Fb%20c/events');
    expect(() => routePath(HTTP_ROUTES.postEvents)).toThrow('no value for {agentId}');
    expect(fastifyUrl(HTTP_ROUTES.moveIncident.path)).toBe('/api/v1/admin/incidents/:id');
  });

  it('sends an answer as the handler made it: nothing dropped or renamed, a mismatch refused', () => {
    const serialize = serializerCompiler({ schema: z.object({ a: z.string() }), method: 'GET', url: '/x', httpStatus: '200' });
    // A field the schema does not name reaches the client (a signed policy must arrive as signed).
    expect(serialize({ a: 'x', extra: 1 })).toBe('{"a":"x","extra":1}');
    expect(() => serialize({ a: 1 })).toThrow('does not match its schema');
  });
});

describe.each(ENGINES)('the HTTP contract on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  const clock = fixedClock(new Date());
  let collector: Collector;
  let cleanup: () => Promise<void>;
  let actor: Actor;

  beforeAll(async () => {
    if (skip) return;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-contract-');
    cleanup = drop;
    collector = await createCollector({ db: url, logger: false, clock });
    await addAdmin(collector.ctx.db, 'kanri', 'admin', 'correct horse battery');
    actor = { username: 'kanri', role: 'admin', address: '127.0.0.1' };
  });
  afterAll(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  it.skipIf(skip)('serves every route of the table and no API route outside it', async () => {
    const served = (await listRoutes(collector.app)).filter(
      (r) => r.method !== 'HEAD' && (r.url.startsWith('/api/') || r.url === '/healthz' || r.url === '/metrics'),
    );
    const table = ROUTES.map(([, r]) => `${r.method} ${fastifyUrl(r.path)}`).sort();
    expect(served.map((r) => `${r.method} ${r.url}`).sort()).toEqual(table);
  });

  it.skipIf(skip)('answers GET /api/v1/openapi.json with every route, its callers and its errors', async () => {
    const res = await collector.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = JSON.parse(res.body) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { operationId: string; security?: unknown; responses: Record<string, unknown>; parameters: { name: string; in: string }[] }>
      >;
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const [name, route] of ROUTES) {
      const op = doc.paths[route.path]?.[route.method.toLowerCase()];
      expect(op?.operationId, `${route.method} ${route.path}`).toBe(name);
      expect(!!op!.security, name).toBe(route.auth.kind !== 'none');
      for (const code of route.errors) expect(Object.keys(op!.responses), `${name} ${code}`).toContain(String(HTTP_STATUS[code]));
    }
    const events = doc.paths['/api/v1/agents/{agentId}/events']!.post!;
    expect(events.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'agentId', in: 'path' }), expect.objectContaining({ name: 'mamori-head', in: 'header' })]),
    );
  });

  const auditCount = async (action: string) => (await collector.ctx.db.selectFrom('audit_log').select('id').where('action', '=', action).execute()).length;

  it.skipIf(skip)('a decision writes its audit entry with it, at the collector clock; a refused one writes none', async () => {
    const db = collector.ctx.db;
    const agentId = '00000000-0000-4000-8000-000000000001';
    await db
      .insertInto('exceptions')
      .values({
        request_id: 'req-1',
        agent_id: agentId,
        request_code: 'ABCD-EFGH',
        device: '{}',
        reason: 'r',
        minutes: 30,
        requested_at: clock.now().toISOString(),
        status: 'pending',
      })
      .execute();
    await decideException(db, actor, 'req-1', { approve: 30 }, clock);
    await expect(decideException(db, actor, 'req-1', 'deny', clock)).rejects.toThrow('already approved');
    const rows = await db.selectFrom('audit_log').selectAll().where('target', '=', 'req-1').execute();
    expect(rows.map((r) => [r.action, r.at])).toEqual([['exception.approve', clock.now().toISOString()]]);
    expect(JSON.parse(rows[0]!.detail)).toEqual({ minutes: 30, expiresAt: new Date(clock.now().getTime() + 30 * 60_000).toISOString() });
  });

  it.skipIf(skip)('an incident move the workflow refuses changes nothing and audits nothing', async () => {
    const db = collector.ctx.db;
    const agentId = '00000000-0000-4000-8000-000000000002';
    await db
      .insertInto('incidents')
      .values({
        receipt: 'INC-1',
        agent_id: agentId,
        seq: 1,
        category: 'other',
        description: 'd',
        occurred_at: null,
        contact: null,
        context: '{}',
        reported_at: clock.now().toISOString(),
        status: 'closed',
        updated_at: clock.now().toISOString(),
        updated_by: null,
      })
      .execute();
    const before = await auditCount('incident.status');
    await expect(moveIncident(db, actor, `${agentId}:INC-1`, 'investigating', clock)).rejects.toThrow('cannot go from closed');
    expect(await auditCount('incident.status')).toBe(before);
    await moveIncident(db, actor, `${agentId}:INC-1`, 'closed', clock);
    expect(await auditCount('incident.status')).toBe(before + 1);
  });
});
