import type { Kysely } from 'kysely';
import { MamoriError } from '../shared';
import type { Database } from './db/schema';

export const INCIDENT_STATUSES = ['new', 'investigating', 'closed'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/** The workflow moves forward only: new → investigating → closed (closing a new one is allowed). */
export function canMove(from: string, to: IncidentStatus): boolean {
  return INCIDENT_STATUSES.indexOf(to) > INCIDENT_STATUSES.indexOf(from as IncidentStatus);
}

/** Incidents, newest first: all, those with one status, or the one with a receipt number. */
export async function listIncidents(db: Kysely<Database>, status?: IncidentStatus, receipt?: string) {
  let q = db
    .selectFrom('incidents')
    .leftJoin('agents', 'agents.id', 'incidents.agent_id')
    .select(['incidents.receipt', 'incidents.agent_id', 'agents.hostname', 'agents.segment', 'incidents.category', 'incidents.description', 'incidents.occurred_at', 'incidents.contact', 'incidents.context', 'incidents.reported_at', 'incidents.status', 'incidents.updated_at', 'incidents.updated_by'])
    .orderBy('incidents.reported_at', 'desc');
  if (status) q = q.where('incidents.status', '=', status);
  if (receipt !== undefined) q = q.where('incidents.receipt', '=', receipt);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: r.receipt,
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

/** @throws MamoriError not_found, or bad_request for a move the workflow does not allow. */
export async function moveIncident(db: Kysely<Database>, receipt: string, to: IncidentStatus, actor: string): Promise<{ from: string; to: IncidentStatus }> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('incidents').select('status').where('receipt', '=', receipt).executeTakeFirst();
    if (!row) throw new MamoriError('not_found', `no incident ${receipt}`);
    if (row.status === to) return { from: row.status, to };
    if (!canMove(row.status, to)) throw new MamoriError('bad_request', `an incident goes new → investigating → closed; it cannot go from ${row.status} to ${to}`);
    await trx.updateTable('incidents').set({ status: to, updated_at: new Date().toISOString(), updated_by: actor }).where('receipt', '=', receipt).execute();
    return { from: row.status, to };
  });
}
