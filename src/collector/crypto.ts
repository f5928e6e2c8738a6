import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import { policySigningPayload, type Policy, type UnsignedPolicy } from '../shared';
import type { Database } from './db/schema';

/** A random secret in base64url, for tokens. */
export function randomToken(prefix: string, bytes = 32): string {
  return `${prefix}${crypto.randomBytes(bytes).toString('base64url')}`;
}

/** Tokens are high-entropy, so a plain SHA-256 is enough to store them. */
export function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex hashes. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && crypto.timingSafeEqual(x, y);
}

/** scrypt password hash, `scrypt$N$r$p$salt$hash` (base64). */
export function hashPassword(password: string): string {
  const salt = crypto.randomBytes(16);
  const hash = crypto.scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
  return `scrypt$16384$8$1$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = crypto.scryptSync(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return crypto.timingSafeEqual(expected, actual);
}

/** The collector's Ed25519 signing key, made at first start and kept in the database. */
export interface SigningKey {
  /** SPKI DER, base64: what agents pin. */
  publicKey: string;
  sign(policy: UnsignedPolicy): Policy;
}

export async function loadSigningKey(db: Kysely<Database>): Promise<SigningKey> {
  let row = await db.selectFrom('keys').selectAll().where('id', '=', 'policy').executeTakeFirst();
  if (!row) {
    const pair = crypto.generateKeyPairSync('ed25519');
    const candidate = {
      id: 'policy',
      public_key: pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      private_key: pair.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      created_at: new Date().toISOString(),
    };
    // Two collectors starting together on one database keep whichever key was stored first.
    await db.insertInto('keys').values(candidate).onConflict((oc) => oc.column('id').doNothing()).execute();
    row = await db.selectFrom('keys').selectAll().where('id', '=', 'policy').executeTakeFirstOrThrow();
  }
  const privateKey = crypto.createPrivateKey({ key: Buffer.from(row.private_key, 'base64'), format: 'der', type: 'pkcs8' });
  return {
    publicKey: row.public_key,
    sign(policy) {
      const signature = crypto.sign(null, Buffer.from(policySigningPayload(policy), 'utf8'), privateKey).toString('base64');
      return { ...policy, signature };
    },
  };
}
