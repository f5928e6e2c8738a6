import { audit } from '../../admins';
import type { CollectorContext } from '../../context';
import type { RouteHandlers } from './route';

/** Stored events as admins and auditors read them (a read of personal data: audited). */
export const eventRoutes = (ctx: CollectorContext): RouteHandlers<'listEvents'> => ({
  listEvents: async ({ actor, query: q }) => {
    let query = ctx.db.selectFrom('events').selectAll().orderBy('agent_id').orderBy('seq').limit(q.limit);
    if (q.agentId) query = query.where('agent_id', '=', q.agentId);
    if (q.type) query = query.where('type', '=', q.type);
    if (q.since !== undefined) query = query.where('seq', '>', q.since);
    const rows = await query.execute();
    await audit(ctx.db, actor, 'events.read', q.agentId ?? '*', { type: q.type ?? null, since: q.since ?? null, count: rows.length }, ctx.clock);
    return rows.map((r) => ({
      agentId: r.agent_id,
      seq: Number(r.seq),
      at: r.at,
      type: r.type,
      payload: JSON.parse(r.payload) as unknown,
      prevHash: r.prev_hash,
      hash: r.hash,
      receivedAt: r.received_at,
    }));
  },
});
