import crypto from 'node:crypto';

/** scrypt parameters of new hashes (16 MiB of memory, about 50 ms on one core). */
const N = 16384;
const R = 8;
const P = 1;
/** Longer passwords are refused: scrypt's cost grows with the input, and nobody types more. */
export const MAX_PASSWORD_LENGTH = 1024;

/** scrypt on libuv's thread pool, so a login never blocks the collector's event loop. */
function scrypt(password: string, salt: Buffer, length: number, opts: crypto.ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    crypto.scrypt(password, salt, length, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** scrypt password hash, `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const hash = await scrypt(password, salt, 32, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** True when `password` matches `stored`; a malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  let actual: Buffer;
  try {
    actual = await scrypt(password.slice(0, MAX_PASSWORD_LENGTH), Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  } catch {
    return false;
  }
  return actual.length === expected.length && crypto.timingSafeEqual(expected, actual);
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the time of one real password check without an account to check against, so an unknown
 * or locked user is answered as slowly as a wrong password and the timing names no account.
 */
export async function spendPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword('mamori-dummy-password');
  await verifyPassword(password, await dummyHash);
}
