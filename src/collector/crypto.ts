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
