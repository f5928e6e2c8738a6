import { audit } from '../../admins';
import type { CollectorContext } from '../../context';
import { listIncidents, moveIncident } from '../../incidents';
import type { RouteHandlers } from './route';

/** Incidents staff reported from the tray: read (audited) and moved forward. */
export const incidentRoutes = (ctx: CollectorContext): RouteHandlers<'listIncidents' | 'moveIncident'> => ({
  listIncidents: async ({ actor, query }) => {
    const rows = await listIncidents(ctx.db, query.status);
    await audit(ctx.db, actor, 'incidents.read', query.status ?? '*', { count: rows.length }, ctx.clock);
    return rows;
  },
  moveIncident: async ({ actor, params, body }) => {
    await moveIncident(ctx.db, actor, params.id, body.status, ctx.clock);
    return { id: params.id, status: body.status };
  },
});
