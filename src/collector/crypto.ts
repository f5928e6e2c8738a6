import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import {
  KeyRotation,
  checkpointSigningPayload,
  SEGMENTS,
  freshnessSigningPayload,
  policySigningPayload,
  rotationSigningPayload,
  systemClock,
  type ChainCheckpoint,
  type Clock,
  type Policy,
  type PolicyFreshness,
  type Segment,
  type UnsignedPolicy,
} from '../shared';
import type { Actor } from './admins';
import type { Database } from './db/schema';
import { currentPolicy } from './policies';

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

/** The key file's name beside the database (or in the data directory for PostgreSQL). */
export const KEY_FILE_NAME = 'policy-signing.key';

/** The collector's Ed25519 signing key, kept in a key file of mode 0600, never in the database. */
export interface SigningKey {
  /** SPKI DER, base64: what agents pin. Read anew when the key file was replaced (`key rotate`). */
  readonly publicKey: string;
  /** The key file. */
  readonly file: string;
  sign(policy: UnsignedPolicy): Policy;
  /** The signed statement that `version` is the segment's current policy now. */
  freshness(segment: Segment, version: number, at: Date): PolicyFreshness;
  /** Signs a retention checkpoint (docs/design.md#retention); the signature is base64. */
  checkpoint(checkpoint: ChainCheckpoint): string;
}

interface KeyMaterial {
  publicKey: string;
  privateKey: crypto.KeyObject;
}

function publicOf(privateKey: crypto.KeyObject): string {
  return crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64');
}

function pemOf(privateKey: crypto.KeyObject): string {
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/**
 * Reads the key file, refusing one that others may read (a key anyone can read signs anyone's policy).
 * @throws Error naming the file and what is wrong with it.
 */
function readKeyFile(file: string): KeyMaterial {
  const stat = fs.statSync(file);
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    throw new Error(`${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); make it 0600 (chmod 600 ${file})`);
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} does not hold a private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new Error(`${file} holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key; the policy-signing key is Ed25519`);
  return { privateKey, publicKey: publicOf(privateKey) };
}

/**
 * Writes a private key to `file` with mode 0600 through a temporary file and a rename, so a crash
 * leaves the old key or the new one, never half of one. `exclusive` refuses to replace a file.
 * @returns false when `exclusive` and the file already exists.
 */
export function writeKeyFile(file: string, privateKey: crypto.KeyObject, exclusive = false): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(temp, 'wx', 0o600);
  try {
    fs.writeSync(fd, pemOf(privateKey));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    if (exclusive) {
      try {
        fs.linkSync(temp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw err;
      }
    } else {
      fs.renameSync(temp, file);
    }
  } finally {
    fs.rmSync(temp, { force: true });
  }
  return true;
}

function signer(file: string, initial: KeyMaterial): SigningKey {
  let material = initial;
  let stamp = fileStamp(file);
  // `collector key rotate` replaces the file while collectors run: they sign with the new key from then on.
  const current = (): KeyMaterial => {
    const now = fileStamp(file);
    if (now !== stamp) {
      material = readKeyFile(file);
      stamp = now;
    }
    return material;
  };
  return {
    file,
    get publicKey() {
      return current().publicKey;
    },
    sign(policy) {
      const signature = crypto.sign(null, Buffer.from(policySigningPayload(policy), 'utf8'), current().privateKey).toString('base64');
      return { ...policy, signature };
    },
    freshness(segment, version, at) {
      const statement = { segment, version, at: at.toISOString() };
      const signature = crypto.sign(null, Buffer.from(freshnessSigningPayload(statement), 'utf8'), current().privateKey).toString('base64');
      return { ...statement, signature };
    },
    checkpoint(checkpoint) {
      return crypto.sign(null, Buffer.from(checkpointSigningPayload(checkpoint), 'utf8'), current().privateKey).toString('base64');
    },
  };
}

function fileStamp(file: string): string {
  try {
    const s = fs.statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/**
 * Loads the policy-signing key from its key file. On first start it is made there; a key an older
 * collector kept in the database is moved into the file and erased from its row. The database keeps
 * the public key only, so a collector started with another key file is refused.
 * @throws Error when the file and the database disagree, or the file is unreadable or too open.
 */
export async function loadSigningKey(db: Kysely<Database>, file: string, clock: Clock = systemClock): Promise<SigningKey> {
  const row = await db.selectFrom('keys').selectAll().where('id', '=', 'policy').executeTakeFirst();
  if (row && row.private_key) {
    // The key of a collector before 0003: into the file, then out of the row.
    const privateKey = crypto.createPrivateKey({ key: Buffer.from(row.private_key, 'base64'), format: 'der', type: 'pkcs8' });
    if (!writeKeyFile(file, privateKey, true)) {
      const existing = readKeyFile(file);
      if (existing.publicKey !== row.public_key)
        throw new Error(`${file} holds another key than the one in the database; move it away to migrate the database's key`);
    }
    await db.updateTable('keys').set({ private_key: '' }).where('id', '=', 'policy').execute();
    return signer(file, readKeyFile(file));
  }
  if (!fs.existsSync(file)) {
    if (row)
      throw new Error(
        `the policy-signing key is missing: ${file} does not exist, and agents pin the key ${row.public_key.slice(-16)}…; copy the key file from the first collector`,
      );
    // Two collectors starting together beside one database keep whichever file was linked first.
    writeKeyFile(file, crypto.generateKeyPairSync('ed25519').privateKey, true);
  }
  const material = row ? settleRotation(file, row.public_key) : readKeyFile(file);
  if (!row) {
    await db
      .insertInto('keys')
      .values({ id: 'policy', public_key: material.publicKey, private_key: '', created_at: clock.now().toISOString() })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }
  const stored = await db.selectFrom('keys').select('public_key').where('id', '=', 'policy').executeTakeFirstOrThrow();
  if (stored.public_key !== material.publicKey) {
    throw new Error(`${file} holds another key than the one this database's agents pin; give the collector's own key file (--key-file)`);
  }
  return signer(file, material);
}

/**
 * A rotation the process did not finish leaves `<file>.previous` beside the key file. When the
 * database still names the previous key the transaction never committed: the previous key goes back
 * into the file. When it names the file's key the rotation committed: the leftover is removed.
 * @returns the key the database names, from the file.
 */
function settleRotation(file: string, storedPublicKey: string): KeyMaterial {
  const previousFile = `${file}.previous`;
  const current = readKeyFile(file);
  if (!fs.existsSync(previousFile)) return current;
  const previous = readKeyFile(previousFile);
  if (current.publicKey !== storedPublicKey && previous.publicKey === storedPublicKey) {
    writeKeyFile(file, previous.privateKey);
  }
  if (current.publicKey === storedPublicKey || previous.publicKey === storedPublicKey) fs.rmSync(previousFile, { force: true });
  return readKeyFile(file);
}

/**
 * `collector key rotate`: a new key in the key file, a rotation statement signed by the old key,
 * and every segment's policy re-signed by the new key as a new version, in one transaction. The
 * old key file is kept as `<file>.previous` until the transaction commits.
 * @returns the old and new public keys and the new policy versions.
 */
export async function rotateSigningKey(
  db: Kysely<Database>,
  file: string,
  actor: Actor,
  clock: Clock = systemClock,
): Promise<{ previousPublicKey: string; publicKey: string; versions: Record<string, number> }> {
  const old = readKeyFile(file);
  const stored = await db.selectFrom('keys').select('public_key').where('id', '=', 'policy').executeTakeFirst();
  if (!stored || stored.public_key !== old.publicKey) throw new Error(`${file} does not hold the key this database's agents pin; nothing rotated`);
  const next = crypto.generateKeyPairSync('ed25519').privateKey;
  const at = clock.now().toISOString();
  const unsigned = { previousPublicKey: old.publicKey, publicKey: publicOf(next), at };
  const statement: KeyRotation = {
    ...unsigned,
    signature: crypto.sign(null, Buffer.from(rotationSigningPayload(unsigned), 'utf8'), old.privateKey).toString('base64'),
  };
  const previousFile = `${file}.previous`;
  writeKeyFile(previousFile, old.privateKey);
  const versions: Record<string, number> = {};
  let replaced = false;
  try {
    await rotateInTransaction();
  } catch (err) {
    // Nothing committed and the file untouched: the old key stays, and so does nothing else.
    if (!replaced) fs.rmSync(previousFile, { force: true });
    throw err;
  }
  fs.rmSync(previousFile, { force: true });
  return { previousPublicKey: old.publicKey, publicKey: statement.publicKey, versions };

  async function rotateInTransaction(): Promise<void> {
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('key_rotations')
        .values({ previous_public_key: old.publicKey, public_key: statement.publicKey, statement: JSON.stringify(statement), created_at: at })
        .execute();
      await trx.updateTable('keys').set({ public_key: statement.publicKey }).where('id', '=', 'policy').execute();
      const newKey = signer(file, { privateKey: next, publicKey: statement.publicKey });
      for (const segment of SEGMENTS) {
        const before = await currentPolicy(trx, segment);
        const { signature: _signature, ...body } = before;
        const after = newKey.sign({ ...body, version: before.version + 1, issuedAt: at });
        await trx
          .insertInto('policies')
          .values({ segment, version: after.version, document: JSON.stringify(after), created_at: at, created_by: actor.username })
          .execute();
        versions[segment] = after.version;
      }
      await trx
        .insertInto('audit_log')
        .values({
          at,
          actor: actor.username,
          role: actor.role,
          action: 'key.rotate',
          target: 'policy-signing',
          detail: JSON.stringify({ previousPublicKey: old.publicKey, publicKey: statement.publicKey, versions }),
          address: actor.address,
        })
        .execute();
      // The file changes last inside the transaction: if this fails nothing was committed, and if the
      // commit fails afterwards `<file>.previous` holds the key the database still names.
      writeKeyFile(file, next);
      replaced = true;
    });
  }
}

/** Every rotation statement, oldest first: the path from any key an agent pinned to the current one. */
export async function keyRotations(db: Kysely<Database>): Promise<KeyRotation[]> {
  const rows = await db.selectFrom('key_rotations').select('statement').orderBy('id').execute();
  return rows.map((r) => KeyRotation.parse(JSON.parse(r.statement)));
}
