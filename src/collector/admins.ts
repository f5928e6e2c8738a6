import type { Kysely } from 'kysely';
import { MamoriError } from '../shared';
import { hashPassword, randomToken, sameHash, tokenHash } from './crypto';
import type { Database } from './db/schema';

export const ROLES = ['admin', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

/** Who made a request to an admin route, and from where. */
export interface Actor {
  username: string;
  role: Role;
  address: string;
}

/**
 * Adds (or, unless `replace` is false, replaces) an admin user; returns the user's API token, which
 * is shown once.
 * @throws MamoriError bad_request for a bad name, role or a password under 12 characters.
 */
export async function addAdmin(db: Kysely<Database>, username: string, role: string, password: string, opts: { replace?: boolean } = {}): Promise<string> {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(username)) throw new MamoriError('bad_request', 'a user name is 1–64 letters, digits, . _ @ or -');
  if (!(ROLES as readonly string[]).includes(role)) throw new MamoriError('bad_request', `role must be admin or auditor, not ${role}`);
  if (password.length < 12) throw new MamoriError('bad_request', 'the password must have at least 12 characters');
  if (opts.replace === false && (await db.selectFrom('admins').select('username').where('username', '=', username).executeTakeFirst())) {
    throw new MamoriError('bad_request', `a user named ${username} already exists`);
  }
  const token = randomToken('mam_');
  const row = { username, role, password_hash: hashPassword(password), api_token_hash: tokenHash(token), created_at: new Date().toISOString() };
  await db
    .insertInto('admins')
    .values(row)
    .onConflict((oc) => oc.column('username').doUpdateSet({ role, password_hash: row.password_hash, api_token_hash: row.api_token_hash }))
    .execute();
  return token;
}

/** The admin a bearer token belongs to. @throws MamoriError unauthorized. */
export async function authenticateAdmin(db: Kysely<Database>, bearer: string | undefined): Promise<{ username: string; role: Role }> {
  if (!bearer) throw new MamoriError('unauthorized', 'missing bearer token');
  const hash = tokenHash(bearer);
  const row = await db.selectFrom('admins').select(['username', 'role', 'api_token_hash']).where('api_token_hash', '=', hash).executeTakeFirst();
  if (!row || !sameHash(row.api_token_hash, hash)) throw new MamoriError('unauthorized', 'unknown API token');
  return { username: row.username, role: row.role as Role };
}

/** Records what an admin or auditor did; the audit log is how the collector answers for itself. */
export async function audit(db: Kysely<Database>, actor: Actor, action: string, target: string, detail: unknown = {}): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({ at: new Date().toISOString(), actor: actor.username, role: actor.role, action, target, detail: JSON.stringify(detail), address: actor.address })
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
  const rows = await db.selectFrom('admins').select(['username', 'role', 'created_at', 'last_login_at', 'locked_until', 'failed_logins']).orderBy('username').execute();
  return rows.map((r) => ({ username: r.username, role: r.role as Role, createdAt: r.created_at, lastLoginAt: r.last_login_at, lockedUntil: r.locked_until, failedLogins: Number(r.failed_logins) }));
}

async function requireAccount(db: Kysely<Database>, username: string): Promise<{ role: Role }> {
  const row = await db.selectFrom('admins').select('role').where('username', '=', username).executeTakeFirst();
  if (!row) throw new MamoriError('not_found', `no user ${username}`);
  return { role: row.role as Role };
}

async function adminCount(db: Kysely<Database>): Promise<number> {
  const { n } = await db.selectFrom('admins').select((eb) => eb.fn.countAll<number>().as('n')).where('role', '=', 'admin').executeTakeFirstOrThrow();
  return Number(n);
}

/**
 * Changes a user's role. The last admin cannot be made an auditor, or nobody could manage users.
 * @throws MamoriError not_found, bad_request.
 */
export async function setRole(db: Kysely<Database>, username: string, role: string): Promise<{ from: Role; to: Role }> {
  if (!(ROLES as readonly string[]).includes(role)) throw new MamoriError('bad_request', `role must be admin or auditor, not ${role}`);
  const { role: from } = await requireAccount(db, username);
  if (from === 'admin' && role !== 'admin' && (await adminCount(db)) <= 1) throw new MamoriError('bad_request', 'the last administrator must stay an administrator');
  await db.updateTable('admins').set({ role }).where('username', '=', username).execute();
  return { from, to: role as Role };
}

/** Sets a new password and clears a lockout. @throws MamoriError not_found, bad_request (under 12 characters). */
export async function setPassword(db: Kysely<Database>, username: string, password: string): Promise<void> {
  if (password.length < 12) throw new MamoriError('bad_request', 'the password must have at least 12 characters');
  await requireAccount(db, username);
  await db.updateTable('admins').set({ password_hash: hashPassword(password), failed_logins: 0, locked_until: null }).where('username', '=', username).execute();
}

/** Lifts a lockout. @throws MamoriError not_found. */
export async function unlockAccount(db: Kysely<Database>, username: string): Promise<void> {
  await requireAccount(db, username);
  await db.updateTable('admins').set({ failed_logins: 0, locked_until: null }).where('username', '=', username).execute();
}

/** Replaces a user's API token (the old one stops working); returns the new one, shown once. */
export async function rotateApiToken(db: Kysely<Database>, username: string): Promise<string> {
  await requireAccount(db, username);
  const token = randomToken('mam_');
  await db.updateTable('admins').set({ api_token_hash: tokenHash(token) }).where('username', '=', username).execute();
  return token;
}

/**
 * Deletes a user. Nobody deletes themselves, and the last admin stays.
 * @throws MamoriError not_found, bad_request.
 */
export async function deleteAdmin(db: Kysely<Database>, username: string, actor: string): Promise<void> {
  if (username === actor) throw new MamoriError('bad_request', 'you cannot delete your own account');
  const { role } = await requireAccount(db, username);
  if (role === 'admin' && (await adminCount(db)) <= 1) throw new MamoriError('bad_request', 'the last administrator cannot be deleted');
  await db.deleteFrom('console_sessions').where('username', '=', username).execute();
  await db.deleteFrom('admins').where('username', '=', username).execute();
}
