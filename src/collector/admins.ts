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
 * Adds (or replaces) an admin user; returns the user's API token, which is shown once.
 * @throws MamoriError bad_request for a bad name, role or a password under 12 characters.
 */
export async function addAdmin(db: Kysely<Database>, username: string, role: string, password: string): Promise<string> {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(username)) throw new MamoriError('bad_request', 'a user name is 1–64 letters, digits, . _ @ or -');
  if (!(ROLES as readonly string[]).includes(role)) throw new MamoriError('bad_request', `role must be admin or auditor, not ${role}`);
  if (password.length < 12) throw new MamoriError('bad_request', 'the password must have at least 12 characters');
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
