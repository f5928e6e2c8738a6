import { outboxState } from '../../agents';
import type { CollectorContext } from '../../context';
import type { AgentsTable } from '../../db/schema';
import type { RouteHandlers } from './route';

const orNull = (n: number | null) => (n === null ? null : Number(n));

/** One terminal as `GET /api/v1/admin/terminals` lists it. */
function terminalRow(a: AgentsTable) {
  return {
    agentId: a.id,
    hostname: a.hostname,
    segment: a.segment,
    enrolledAt: a.enrolled_at,
    lastSeen: a.last_seen,
    policyVersion: orNull(a.policy_version),
    enforcement: a.enforcement,
    ackSeq: Number(a.ack_seq),
    chainBroken: orNull(a.chain_broken_seq),
    chainBrokenReason: a.chain_broken_seq === null ? null : a.chain_broken_reason,
    headSeq: orNull(a.head_seq),
    ...outboxState(a),
    agentVersion: a.agent_version,
    lastUser: a.last_user,
  };
}

/** The fleet as admins and auditors read it. */
export const terminalRoutes = (ctx: CollectorContext): RouteHandlers<'listTerminals'> => ({
  listTerminals: async () => (await ctx.db.selectFrom('agents').selectAll().orderBy('hostname').orderBy('id').execute()).map(terminalRow),
});
