import type { Kysely } from 'kysely';
import {
  MamoriError,
  UnlockCodeError,
  agentTag,
  formatScope,
  isExactScope,
  makeUnlockCode,
  normaliseCode,
  parseRequestCode,
  parseScope,
  systemClock,
  type Clock,
  type ExceptionScope,
} from '../shared';
import { audit, type Actor } from './admins';
import type { Database } from './db/schema';

/**
 * Exception requests, newest first: all, those with one status, or (`decided`) every one already
 * approved, denied or granted; at most `limit`.
 */
export async function listExceptions(db: Kysely<Database>, filter: { status?: string; decided?: boolean; limit?: number } = {}) {
  let q = db
    .selectFrom('exceptions')
    .leftJoin('agents', 'agents.id', 'exceptions.agent_id')
    .select([
      'exceptions.request_id',
      'exceptions.agent_id',
      'agents.hostname',
      'agents.segment',
      'exceptions.request_code',
      'exceptions.device',
      'exceptions.reason',
      'exceptions.minutes',
      'exceptions.requested_at',
      'exceptions.status',
      'exceptions.decided_at',
      'exceptions.decided_by',
      'exceptions.expires_at',
    ])
    .orderBy('exceptions.requested_at', 'desc');
  if (filter.status) q = q.where('exceptions.status', '=', filter.status);
  if (filter.decided) q = q.where('exceptions.status', '!=', 'pending');
  if (filter.limit) q = q.limit(filter.limit);
  return (await q.execute()).map((r) => ({
    id: r.request_id,
    agentId: r.agent_id,
    hostname: r.hostname ?? '',
    segment: r.segment ?? '',
    requestCode: r.request_code,
    device: JSON.parse(r.device) as unknown,
    reason: r.reason,
    minutes: Number(r.minutes),
    requestedAt: r.requested_at,
    status: r.status,
    decidedAt: r.decided_at,
    decidedBy: r.decided_by,
    expiresAt: r.expires_at,
  }));
}

/** An admin's decision on a request: approve for `minutes` from now, or deny. */
export type ExceptionDecision = { approve: number } | 'deny';

/**
 * Approves or denies a pending request, from the API or the console: the decision and its audit
 * entry (`exception.approve` with minutes and expiry, or `exception.deny`) are one transaction. An
 * approval runs its minutes from now and reaches the agent at its next sync.
 * @throws MamoriError not_found, or bad_request when the request was already decided.
 */
export async function decideException(
  db: Kysely<Database>,
  actor: Actor,
  id: string,
  decision: ExceptionDecision,
  clock: Clock = systemClock,
): Promise<{ expiresAt: string | null }> {
  const now = clock.now();
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('exceptions').select(['status']).where('request_id', '=', id).executeTakeFirst();
    if (!row) throw new MamoriError('not_found', `no exception request ${id}`);
    if (row.status !== 'pending') throw new MamoriError('bad_request', `request ${id} was already ${row.status}`);
    const status = decision === 'deny' ? 'denied' : 'approved';
    const expiresAt = decision === 'deny' ? null : new Date(now.getTime() + decision.approve * 60_000).toISOString();
    await trx
      .updateTable('exceptions')
      .set({ status, decided_at: now.toISOString(), decided_by: actor.username, expires_at: expiresAt })
      .where('request_id', '=', id)
      .execute();
    if (decision === 'deny') await audit(trx, actor, 'exception.deny', id, {}, clock);
    else await audit(trx, actor, 'exception.approve', id, { minutes: decision.approve, expiresAt }, clock);
    return { expiresAt };
  });
}

/** The approvals an agent has yet to apply: approved and not expired. */
export async function approvedFor(db: Kysely<Database>, agentId: string, now: Date): Promise<{ requestId: string; expiresAt: string }[]> {
  const rows = await db
    .selectFrom('exceptions')
    .select(['request_id', 'expires_at'])
    .where('agent_id', '=', agentId)
    .where('status', '=', 'approved')
    .where('expires_at', '>', now.toISOString())
    .execute();
  return rows.map((r) => ({ requestId: r.request_id, expiresAt: r.expires_at! }));
}

/**
 * Answers a terminal's request code, read over the phone, with an unlock code for `minutes` and
 * the exact device the request was made for. The device is the synced request's; for a request
 * that has not reached the collector, `device` must give it as the terminal shows it
 * (`VVVV:PPPP serial S` / `VVVV:PPPP port P`), and it must be the device the code names.
 * With `by`, the answer is audited (`unlock`) under that actor.
 * @throws MamoriError bad_request for a malformed or old-format code, a device that is not the
 *   request's, or a missing device; not_found when no terminal matches.
 */
export async function unlockCode(
  db: Kysely<Database>,
  requestCode: string,
  minutes: number,
  device?: string,
  by?: { actor: Actor; clock?: Clock },
): Promise<{ code: string; agentId: string; hostname: string; scope: ExceptionScope; scopeText: string }> {
  const answer = await makeUnlockAnswer(db, requestCode, minutes, device);
  if (by) await audit(db, by.actor, 'unlock', answer.agentId, { requestCode, minutes, device: answer.scopeText }, by.clock);
  return answer;
}

async function makeUnlockAnswer(
  db: Kysely<Database>,
  requestCode: string,
  minutes: number,
  device?: string,
): Promise<{ code: string; agentId: string; hostname: string; scope: ExceptionScope; scopeText: string }> {
  let parsed: ReturnType<typeof parseRequestCode>;
  try {
    parsed = parseRequestCode(requestCode);
  } catch (err) {
    throw new MamoriError('bad_request', `not a request code: ${(err as UnlockCodeError).message}`);
  }
  // By the indexed tag: one terminal's secret is read, not every terminal's.
  const candidates = await db.selectFrom('agents').select(['id', 'hostname', 'unlock_secret']).where('unlock_tag', '=', parsed.agentTag).limit(10).execute();
  const matches = candidates.filter((a) => agentTag(a.id) === parsed.agentTag);
  if (matches.length === 0) throw new MamoriError('not_found', 'no enrolled terminal issued this request code; check it was read correctly');
  if (matches.length > 1) throw new MamoriError('bad_request', `the code matches ${matches.length} terminals; approve the request in the console instead`);
  const agent = matches[0]!;
  const synced = (await db.selectFrom('exceptions').select(['request_code', 'device']).where('agent_id', '=', agent.id).execute()).find(
    (r) => normaliseCode(r.request_code) === parsed.normalised,
  );
  let scope: ExceptionScope;
  try {
    if (synced) {
      const stored = JSON.parse(synced.device) as Partial<ExceptionScope>;
      if (!isExactScope(stored)) throw new UnlockCodeError('the request names no single device; it cannot be unlocked');
      scope = stored;
      if (device !== undefined && device.trim() !== '' && formatScope(parseScope(device)) !== formatScope(scope)) {
        throw new UnlockCodeError(`the request is for ${formatScope(scope)}, not ${device.trim()}`);
      }
    } else {
      if (device === undefined || device.trim() === '')
        throw new UnlockCodeError(
          'this request has not reached the collector: give the device as the terminal shows it (VVVV:PPPP serial S or VVVV:PPPP port P)',
        );
      scope = parseScope(device);
    }
    return {
      code: makeUnlockCode(agent.unlock_secret, requestCode, minutes, scope),
      agentId: agent.id,
      hostname: agent.hostname,
      scope,
      scopeText: formatScope(scope),
    };
  } catch (err) {
    throw new MamoriError('bad_request', (err as Error).message);
  }
}
