import type { CollectorContext } from '../../context';
import type { RouteHandlers } from './route';

/** The audit log, newest first. */
export const auditRoutes = (ctx: CollectorContext): RouteHandlers<'listAudit'> => ({
  listAudit: async ({ query }) => {
    const rows = await ctx.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(query.limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      at: r.at,
      actor: r.actor,
      role: r.role,
      action: r.action,
      target: r.target,
      detail: JSON.parse(r.detail) as unknown,
      address: r.address,
    }));
  },
});
