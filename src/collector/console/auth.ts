import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import { systemClock } from '../../shared';
import { audit, type Actor, type Role } from '../admins';
import { randomToken, tokenHash } from '../crypto';
import { spendPasswordCheck, verifyPassword } from '../passwords';
import type { Database } from '../db/schema';

/** Consecutive failed logins that lock an account. */
export const LOCKOUT_THRESHOLD = 5;
/** How long a locked account stays locked. */
export const LOCKOUT_MINUTES = 15;
/** A session unused for this long ends. */
export const IDLE_MINUTES = 30;
/** A session ends this long after login whatever its use. */
export const ABSOLUTE_HOURS = 12;
/** `last_seen_at` is written at most this often, so browsing does not write on every page. */
const TOUCH_EVERY_MS = 60_000;

/** The signed-in user behind a console request. */
export interface ConsoleSession {
  username: string;
  role: Role;
  /** The synchronizer token every form of this session carries. */
  csrf: string;
  idHash: string;
  expiresAt: string;
}

export type LoginResult = { ok: true; sessionId: string; session: ConsoleSession } | { ok: false; reason: 'invalid' | 'locked'; lockedUntil?: string };

const minutesFrom = (at: Date, minutes: number) => new Date(at.getTime() + minutes * 60_000).toISOString();

/**
 * Checks a console password and opens a session. Five failures in a row lock the account for 15
 * minutes; every login, failure and locked attempt goes to the audit log with the address.
 */
export async function login(
  db: Kysely<Database>,
  input: { username: string; password: string; address: string; userAgent: string },
  at: Date = systemClock.now(),
): Promise<LoginResult> {
  const username = input.username.trim().slice(0, 64);
  const row = await db.selectFrom('admins').select(['username', 'role', 'password_hash', 'locked_until']).where('username', '=', username).executeTakeFirst();
  // A failed attempt is not the user's act: the address that made it is the actor, the account the
  // target (and the entry is never attributed to the user it tried to be).
  const fromAddress: Actor = { username: input.address.slice(0, 100), role: '' as Role, address: input.address };
  const fail = async (reason: string) => {
    await audit(db, fromAddress, 'login.failed', username || '(empty)', { reason });
  };
  // Unknown and locked users cost one scrypt too, so the answer's timing names no account.
  if (!row) {
    await spendPasswordCheck(input.password);
    await fail('unknown_user');
    return { ok: false, reason: 'invalid' };
  }
  if (row.locked_until && row.locked_until > at.toISOString()) {
    await spendPasswordCheck(input.password);
    await fail('locked');
    return { ok: false, reason: 'locked', lockedUntil: row.locked_until };
  }
  if (!(await verifyPassword(input.password, row.password_hash))) {
    // Incremented in the database, so failures counted by several collectors add up.
    await db
      .updateTable('admins')
      .set((eb) => ({ failed_logins: eb('failed_logins', '+', 1) }))
      .where('username', '=', username)
      .execute();
    const { failed_logins } = await db.selectFrom('admins').select('failed_logins').where('username', '=', username).executeTakeFirstOrThrow();
    if (Number(failed_logins) >= LOCKOUT_THRESHOLD) {
      const lockedUntil = minutesFrom(at, LOCKOUT_MINUTES);
      await db.updateTable('admins').set({ locked_until: lockedUntil, failed_logins: 0 }).where('username', '=', username).execute();
      await audit(db, fromAddress, 'login.locked', username, { failures: LOCKOUT_THRESHOLD, lockedUntil });
      return { ok: false, reason: 'locked', lockedUntil };
    }
    await fail('bad_password');
    return { ok: false, reason: 'invalid' };
  }
  const sessionId = randomToken('', 32);
  const csrf = randomToken('', 24);
  const expiresAt = minutesFrom(at, IDLE_MINUTES);
  await db
    .insertInto('console_sessions')
    .values({
      id_hash: tokenHash(sessionId),
      username,
      csrf_token: csrf,
      created_at: at.toISOString(),
      last_seen_at: at.toISOString(),
      expires_at: expiresAt,
      address: input.address.slice(0, 100),
      user_agent: input.userAgent.slice(0, 300),
    })
    .execute();
  await db.updateTable('admins').set({ failed_logins: 0, locked_until: null, last_login_at: at.toISOString() }).where('username', '=', username).execute();
  await audit(db, { username, role: row.role as Role, address: input.address }, 'login', username);
  return { ok: true, sessionId, session: { username, role: row.role as Role, csrf, idHash: tokenHash(sessionId), expiresAt } };
}

/**
 * The session a cookie names, or null when it is unknown, idle too long, too old or its user is
 * gone. The role is read afresh, so a changed role takes effect on the next request.
 */
export async function resolveSession(db: Kysely<Database>, sessionId: string | undefined, at: Date = systemClock.now()): Promise<ConsoleSession | null> {
  if (!sessionId || sessionId.length > 100) return null;
  const idHash = tokenHash(sessionId);
  const row = await db
    .selectFrom('console_sessions')
    .innerJoin('admins', 'admins.username', 'console_sessions.username')
    .select([
      'console_sessions.username',
      'admins.role',
      'console_sessions.csrf_token',
      'console_sessions.created_at',
      'console_sessions.last_seen_at',
      'console_sessions.expires_at',
    ])
    .where('console_sessions.id_hash', '=', idHash)
    .executeTakeFirst();
  const now = at.toISOString();
  if (!row || row.expires_at <= now || Date.parse(row.created_at) + ABSOLUTE_HOURS * 3_600_000 <= at.getTime()) {
    if (row) await db.deleteFrom('console_sessions').where('id_hash', '=', idHash).execute();
    return null;
  }
  let expiresAt = row.expires_at;
  if (at.getTime() - Date.parse(row.last_seen_at) >= TOUCH_EVERY_MS) {
    expiresAt = minutesFrom(at, IDLE_MINUTES);
    await db.updateTable('console_sessions').set({ last_seen_at: now, expires_at: expiresAt }).where('id_hash', '=', idHash).execute();
  }
  return { username: row.username, role: row.role as Role, csrf: row.csrf_token, idHash, expiresAt };
}

/** Ends one session. */
export async function logout(db: Kysely<Database>, session: ConsoleSession, address: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('id_hash', '=', session.idHash).execute();
  await audit(db, { username: session.username, role: session.role, address }, 'logout', session.username);
}

/** Ends every session of a user (password reset, role change, deletion). */
export async function endSessionsOf(db: Kysely<Database>, username: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('username', '=', username).execute();
}

/** Removes sessions past their expiry; called now and then so the table stays small. */
export async function pruneSessions(db: Kysely<Database>, at: Date = systemClock.now()): Promise<void> {
  await db.deleteFrom('console_sessions').where('expires_at', '<=', at.toISOString()).execute();
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(session: ConsoleSession, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length !== session.csrf.length) return false;
  return crypto.timingSafeEqual(Buffer.from(submitted), Buffer.from(session.csrf));
}
