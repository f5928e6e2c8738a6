import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MamoriError } from '../../../shared';
import { audit } from '../../admins';
import { incidentById } from '../../console/queries';
import { IncidentPage, IncidentsPage } from '../../console/views/pages/incidents';
import { INCIDENT_STATUSES, listIncidents, moveIncident, parseIncidentId } from '../../incidents';
import { FormField, form, type ConsoleKit } from './kit';

const ListQuery = z.object({ status: z.enum(INCIDENT_STATUSES).optional().catch(undefined) });
/** An incident's id: `<agentId>:<receipt>`, or a bare receipt while no other terminal issued it. */
const IncidentParams = z.object({ id: z.string() });
const StatusForm = z.object({ status: z.enum(INCIDENT_STATUSES) });

/** Incidents: the list, one incident, and its workflow (new → investigating → closed). */
export function incidentPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, send, actorOf, flashNext, redirect } = kit;

  scope.get(
    '/incidents',
    { config: { page: 'incidents' }, schema: { querystring: ListQuery } },
    kit.guarded(async (request, reply, s, v) => {
      const { status } = ListQuery.parse(request.query ?? {});
      const rows = await listIncidents(ctx.db, status);
      await audit(ctx.db, actorOf(request, s), 'incidents.read', status ?? '*', { count: rows.length });
      return send(reply, <IncidentsPage v={v} rows={rows} status={status} />);
    }),
  );

  scope.get(
    '/incidents/:id',
    { config: { page: 'incidents' }, schema: { params: IncidentParams } },
    kit.guarded(async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const incident = await incidentById(ctx.db, id.slice(0, 100));
      if (!incident) throw new MamoriError('not_found', `no incident ${id}`);
      await audit(ctx.db, actorOf(request, s), 'incidents.read', incident.id, { count: 1 });
      return send(reply, <IncidentPage v={v} i={incident} />);
    }),
  );

  // The status is checked by the handler, so a bad one answers the console's 400 page.
  scope.post(
    '/incidents/:id/status',
    { config: { page: 'incidentWorkflow' }, schema: { params: IncidentParams, body: form({ status: FormField }) } },
    kit.guarded(async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const { status } = StatusForm.parse(request.body);
      await moveIncident(ctx.db, actorOf(request, s), id.slice(0, 100), status, ctx.clock);
      flashNext(reply, 'ok', 'incidents.moved', { id: parseIncidentId(id).receipt, status: v.t(`incident.status.${status}`) });
      return redirect(reply, `/incidents/${encodeURIComponent(id)}`);
    }),
  );
}
