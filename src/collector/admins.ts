import type { Kysely } from 'kysely';
import { MamoriError, systemClock, type Clock } from '../shared';
import { randomToken, sameHash, tokenHash } from './crypto';
import { MAX_PASSWORD_LENGTH, hashPassword } from './passwords';
import type { Database } from './db/schema';

export const ROLES = ['admin', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

/** Who made a request to an admin route, and from where. */
export interface Actor {
  username: string;
  role: Role;
  address: string;
}

/** How `addAdmin` treats an existing user of that name. */
export interface AddAdminOptions {
  /**
   * Replace the existing user's role, password and API token, end their console sessions and
   * record `user.reset` in the audit log. Without it an existing name is refused.
   */
  reset?: boolean;
  /** Who adds the user, for the audit log (`user.add` / `user.reset`); none: not audited here. */
  actor?: Actor;
}

/**
 * Adds an admin user, or with `reset` replaces an existing one; returns the user's API token,
 * which is shown once. The account, its audit entry and (on reset) the end of its sessions are one
 * transaction.
 * @throws MamoriError bad_request for a bad name, role or password (12–1024 characters), or a name
 * that exists without `reset`; not_found for `reset` of a user that does not exist.
 */
export async function addAdmin(db: Kysely<Database>, username: string, role: string, password: string, opts: AddAdminOptions = {}): Promise<string> {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(username)) throw new MamoriError('bad_request', 'a user name is 1–64 letters, digits, . _ @ or -');
  if (!(ROLES as readonly string[]).includes(role)) throw new MamoriError('bad_request', `role must be admin or auditor, not ${role}`);
  checkPassword(password);
  const token = randomToken('mam_');
  const passwordHash = await hashPassword(password);
  await db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('admins').select('role').where('username', '=', username).executeTakeFirst();
    if (existing && !opts.reset) throw new MamoriError('bad_request', `a user named ${username} already exists`);
    if (!existing && opts.reset) throw new MamoriError('not_found', `no user ${username} to reset`);
    if (existing) {
      if (existing.role === 'admin' && role !== 'admin' && (await adminCount(trx)) <= 1)
        throw new MamoriError('bad_request', 'the last administrator must stay an administrator');
      await trx
        .updateTable('admins')
        .set({ role, password_hash: passwordHash, api_token_hash: tokenHash(token), failed_logins: 0, locked_until: null })
        .where('username', '=', username)
        .execute();
      await trx.deleteFrom('console_sessions').where('username', '=', username).execute();
    } else {
      await trx
        .insertInto('admins')
        .values({ username, role, password_hash: passwordHash, api_token_hash: tokenHash(token), created_at: new Date().toISOString() })
        .execute();
    }
    if (opts.actor)
      await audit(
        trx,
        opts.actor,
        existing ? 'user.reset' : 'user.add',
        username,
        existing ? { role: { from: existing.role, to: role }, sessionsEnded: true } : { role },
      );
  });
  return token;
}

/** @throws MamoriError bad_request for a password under 12 or over 1024 characters. */
function checkPassword(password: string): void {
  if (password.length < 12) throw new MamoriError('bad_request', 'the password must have at least 12 characters');
  if (password.length > MAX_PASSWORD_LENGTH) throw new MamoriError('bad_request', `the password must have at most ${MAX_PASSWORD_LENGTH} characters`);
}

/** The admin a bearer token belongs to. @throws MamoriError unauthorized. */
export async function authenticateAdmin(db: Kysely<Database>, bearer: string | undefined): Promise<{ username: string; role: Role }> {
  if (!bearer) throw new MamoriError('unauthorized', 'missing bearer token');
  const hash = tokenHash(bearer);
  const row = await db.selectFrom('admins').select(['username', 'role', 'api_token_hash']).where('api_token_hash', '=', hash).executeTakeFirst();
  if (!row || !sameHash(row.api_token_hash, hash)) throw new MamoriError('unauthorized', 'unknown API token');
  return { username: row.username, role: row.role as Role };
}

/**
 * Records what an admin or auditor did; the audit log is how the collector answers for itself.
 * Given a transaction, the entry commits or rolls back with the change it records.
 */
export async function audit(
  db: Kysely<Database>,
  actor: Actor,
  action: string,
  target: string,
  detail: unknown = {},
  clock: Clock = systemClock,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({ at: clock.now().toISOString(), actor: actor.username, role: actor.role, action, target, detail: JSON.stringify(detail), address: actor.address })
    .execute();
}

/** An account as the users page lists it; never its secrets. */
export interface AdminAccount {
  username: string;
  role: Role;
  createdAt: string;
  lastLoginAt: string | null;
  lockedUntil: string | null;
  failedLogins: number;
}

export async function listAdmins(db: Kysely<Database>): Promise<AdminAccount[]> {
  const rows = await db
    .selectFrom('admins')
    .select(['username', 'role', 'created_at', 'last_login_at', 'locked_until', 'failed_logins'])
    .orderBy('username')
    .execute();
  return rows.map((r) => ({
    username: r.username,
    role: r.role as Role,
    createdAt: r.created_at,
    lastLoginAt: r.last_login_at,
    lockedUntil: r.locked_until,
    failedLogins: Number(r.failed_logins),
  }));
}

async function requireAccount(db: Kysely<Database>, username: string): Promise<{ role: Role }> {
  const row = await db.selectFrom('admins').select('role').where('username', '=', username).executeTakeFirst();
  if (!row) throw new MamoriError('not_found', `no user ${username}`);
  return { role: row.role as Role };
}

async function adminCount(db: Kysely<Database>): Promise<number> {
  const { n } = await db
    .selectFrom('admins')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('role', '=', 'admin')
    .executeTakeFirstOrThrow();
  return Number(n);
}

/** Who changes a user, for the audit log (`user.<action>`); without an actor nothing is audited. */
export interface UserChangeOptions {
  actor?: Actor;
  clock?: Clock;
}

/** Runs one change to a user and its audit entry in one transaction. */
async function userChange<T>(
  db: Kysely<Database>,
  action: string,
  username: string,
  opts: UserChangeOptions,
  change: (trx: Kysely<Database>) => Promise<{ result: T; detail?: unknown }>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const { result, detail } = await change(trx);
    if (opts.actor) await audit(trx, opts.actor, `user.${action}`, username, detail ?? {}, opts.clock);
    return result;
  });
}

/**
 * Changes a user's role and ends their console sessions (a session keeps the role it opened
 * with). The last admin cannot be made an auditor, or nobody could manage users.
 * @throws MamoriError not_found, bad_request.
 */
export async function setRole(db: Kysely<Database>, username: string, role: string, opts: UserChangeOptions = {}): Promise<{ from: Role; to: Role }> {
  if (!(ROLES as readonly string[]).includes(role)) throw new MamoriError('bad_request', `role must be admin or auditor, not ${role}`);
  return userChange(db, 'role', username, opts, async (trx) => {
    const { role: from } = await requireAccount(trx, username);
    if (from === 'admin' && role !== 'admin' && (await adminCount(trx)) <= 1)
      throw new MamoriError('bad_request', 'the last administrator must stay an administrator');
    await trx.updateTable('admins').set({ role }).where('username', '=', username).execute();
    await trx.deleteFrom('console_sessions').where('username', '=', username).execute();
    const change = { from, to: role as Role };
    return { result: change, detail: change };
  });
}

/**
 * Sets a new password, clears a lockout and ends the user's console sessions.
 * @throws MamoriError not_found, bad_request (under 12 or over 1024 characters).
 */
export async function setPassword(db: Kysely<Database>, username: string, password: string, opts: UserChangeOptions = {}): Promise<void> {
  checkPassword(password);
  const passwordHash = await hashPassword(password);
  await userChange(db, 'password', username, opts, async (trx) => {
    await requireAccount(trx, username);
    await trx.updateTable('admins').set({ password_hash: passwordHash, failed_logins: 0, locked_until: null }).where('username', '=', username).execute();
    await trx.deleteFrom('console_sessions').where('username', '=', username).execute();
    return { result: undefined };
  });
}

/** Lifts a lockout. @throws MamoriError not_found. */
export async function unlockAccount(db: Kysely<Database>, username: string, opts: UserChangeOptions = {}): Promise<void> {
  await userChange(db, 'unlock', username, opts, async (trx) => {
    await requireAccount(trx, username);
    await trx.updateTable('admins').set({ failed_logins: 0, locked_until: null }).where('username', '=', username).execute();
    return { result: undefined };
  });
}

/** Replaces a user's API token (the old one stops working); returns the new one, shown once. @throws MamoriError not_found. */
export async function rotateApiToken(db: Kysely<Database>, username: string, opts: UserChangeOptions = {}): Promise<string> {
  return userChange(db, 'token', username, opts, async (trx) => {
    await requireAccount(trx, username);
    const token = randomToken('mam_');
    await trx
      .updateTable('admins')
      .set({ api_token_hash: tokenHash(token) })
      .where('username', '=', username)
      .execute();
    return { result: token };
  });
}

/**
 * Deletes a user and their sessions. Nobody deletes themselves, and the last admin stays. `by` is
 * who deletes: their user name, or the actor the deletion is audited under.
 * @throws MamoriError not_found, bad_request.
 */
export async function deleteAdmin(db: Kysely<Database>, username: string, by: string | Actor, opts: { clock?: Clock } = {}): Promise<void> {
  const actor = typeof by === 'string' ? undefined : by;
  if (username === (actor?.username ?? by)) throw new MamoriError('bad_request', 'you cannot delete your own account');
  await userChange(db, 'delete', username, { actor, clock: opts.clock }, async (trx) => {
    const { role } = await requireAccount(trx, username);
    if (role === 'admin' && (await adminCount(trx)) <= 1) throw new MamoriError('bad_request', 'the last administrator cannot be deleted');
    await trx.deleteFrom('console_sessions').where('username', '=', username).execute();
    await trx.deleteFrom('admins').where('username', '=', username).execute();
    return { result: undefined };
  });
}
