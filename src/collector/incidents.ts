import type { Kysely } from 'kysely';
import { INCIDENT_STATUSES, MamoriError, systemClock, type Clock } from '../shared';
import { audit, type Actor } from './admins';
import type { Database } from './db/schema';

export { INCIDENT_STATUSES };
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/** The workflow moves forward only: new → investigating → closed (closing a new one is allowed). */
export function canMove(from: string, to: IncidentStatus): boolean {
  return INCIDENT_STATUSES.indexOf(to) > INCIDENT_STATUSES.indexOf(from as IncidentStatus);
}

/**
 * An incident's id: `<agentId>:<receipt>`, since receipts are unique per terminal only. A bare
 * receipt still names an incident while no other terminal issued the same one.
 */
export function parseIncidentId(id: string): { agentId?: string; receipt: string } {
  const match = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(.+)$/i.exec(id);
  return match ? { agentId: match[1]!, receipt: match[2]! } : { receipt: id };
}

/** Incidents, newest first: all, those with one status, or those with an id or receipt number. */
export async function listIncidents(db: Kysely<Database>, status?: IncidentStatus, id?: string) {
  let q = db
    .selectFrom('incidents')
    .leftJoin('agents', 'agents.id', 'incidents.agent_id')
    .select([
      'incidents.receipt',
      'incidents.agent_id',
      'agents.hostname',
      'agents.segment',
      'incidents.category',
      'incidents.description',
      'incidents.occurred_at',
      'incidents.contact',
      'incidents.context',
      'incidents.reported_at',
      'incidents.status',
      'incidents.updated_at',
      'incidents.updated_by',
    ])
    .orderBy('incidents.reported_at', 'desc');
  if (status) q = q.where('incidents.status', '=', status);
  if (id !== undefined) {
    const { agentId, receipt } = parseIncidentId(id);
    q = q.where('incidents.receipt', '=', receipt);
    if (agentId) q = q.where('incidents.agent_id', '=', agentId);
  }
  const rows = await q.execute();
  return rows.map((r) => ({
    id: `${r.agent_id}:${r.receipt}`,
    receipt: r.receipt,
    agentId: r.agent_id,
    hostname: r.hostname ?? '',
    segment: r.segment ?? '',
    category: r.category,
    description: r.description,
    occurredAt: r.occurred_at,
    contact: r.contact,
    context: JSON.parse(r.context) as unknown,
    reportedAt: r.reported_at,
    status: r.status,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  }));
}

/**
 * Moves an incident, named by its id or (while unambiguous) its receipt number, from the API or
 * the console: the move and its audit entry (`incident.status`, from and to) are one transaction.
 * @throws MamoriError not_found; bad_request for a move the workflow does not allow, or a receipt
 *   that several terminals issued.
 */
export async function moveIncident(
  db: Kysely<Database>,
  actor: Actor,
  id: string,
  to: IncidentStatus,
  clock: Clock = systemClock,
): Promise<{ from: string; to: IncidentStatus }> {
  const { agentId, receipt } = parseIncidentId(id);
  return db.transaction().execute(async (trx) => {
    let q = trx.selectFrom('incidents').select(['status', 'agent_id']).where('receipt', '=', receipt);
    if (agentId) q = q.where('agent_id', '=', agentId);
    const rows = await q.limit(2).execute();
    if (rows.length === 0) throw new MamoriError('not_found', `no incident ${id}`);
    if (rows.length > 1)
      throw new MamoriError('bad_request', `receipt ${receipt} was issued by more than one terminal; name the incident as <agentId>:${receipt}`);
    const row = rows[0]!;
    const move = { from: row.status, to };
    if (row.status !== to) {
      if (!canMove(row.status, to))
        throw new MamoriError('bad_request', `an incident goes new → investigating → closed; it cannot go from ${row.status} to ${to}`);
      await trx
        .updateTable('incidents')
        .set({ status: to, updated_at: clock.now().toISOString(), updated_by: actor.username })
        .where('receipt', '=', receipt)
        .where('agent_id', '=', row.agent_id)
        .execute();
    }
    await audit(trx, actor, 'incident.status', id, move, clock);
    return move;
  });
}
