import { audit } from '../../admins';
import type { CollectorContext } from '../../context';
import { approvedFor, decideException, listExceptions } from '../../exceptions';
import type { RouteHandlers } from './route';

/** Exception requests: the agent's approvals, and an admin's list and decisions. */
export const exceptionRoutes = (ctx: CollectorContext): RouteHandlers<'getApprovedExceptions' | 'listExceptions' | 'approveException' | 'denyException'> => ({
  // Exceptions admins approved for this terminal; the agent applies them at its next sync.
  getApprovedExceptions: async ({ params }) => approvedFor(ctx.db, params.agentId, ctx.clock.now()),
  listExceptions: async ({ actor, query }) => {
    const rows = await listExceptions(ctx.db, { status: query.status });
    await audit(ctx.db, actor, 'exceptions.read', query.status ?? '*', { count: rows.length }, ctx.clock);
    return rows;
  },
  approveException: async ({ actor, params, body }) => {
    const { expiresAt } = await decideException(ctx.db, actor, params.id, { approve: body.minutes }, ctx.clock);
    return { id: params.id, status: 'approved' as const, expiresAt };
  },
  denyException: async ({ actor, params }) => {
    await decideException(ctx.db, actor, params.id, 'deny', ctx.clock);
    return { id: params.id, status: 'denied' as const };
  },
});
