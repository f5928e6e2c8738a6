import type { FastifyInstance } from 'fastify';
import { dashboardData } from '../../console/queries';
import { DashboardPage } from '../../console/views/pages/dashboard';
import { AnyQuery, type ConsoleKit } from './kit';

/** The dashboard: the fleet at a glance. */
export function dashboardPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, send } = kit;
  scope.get(
    '/',
    { config: { page: 'dashboard' }, schema: { querystring: AnyQuery } },
    kit.guarded(async (_request, reply, _s, v) => send(reply, <DashboardPage v={v} d={await dashboardData(ctx.db, ctx.clock.now())} />)),
  );
}
