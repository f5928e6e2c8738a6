import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The file beside the policy-signing key that holds the key the SMTP password is encrypted with. */
export const ALERT_SECRET_FILE_NAME = 'alert-smtp.key';

/** Where the alert secret lives: beside the policy-signing key file (docs/design.md#alert-mail). */
export function alertSecretFileFor(signingKeyFile: string): string {
  return path.join(path.dirname(signingKeyFile), ALERT_SECRET_FILE_NAME);
}

/**
 * Reads the 32-byte key from `file`, making it (mode 0600, never replacing one) when missing.
 * Several collectors on one PostgreSQL need the same file, as they need the same signing key.
 * @throws Error when the file holds something else.
 */
export function loadAlertSecret(file: string): Buffer {
  const read = () => {
    const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold an alert secret (32 bytes, base64)`);
    return key;
  };
  if (fs.existsSync(file)) return read();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return read();
    throw err;
  }
  try {
    fs.writeSync(fd, `${crypto.randomBytes(32).toString('base64')}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return read();
}

/** AES-256-GCM: `v1:iv:tag:ciphertext`, base64 parts. */
export function encryptSecret(key: Buffer, plain: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
}

/** @throws Error when the text was not made with this key. */
export function decryptSecret(key: Buffer, text: string): string {
  const [v, iv, tag, ct] = text.split(':');
  if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('the stored SMTP password is not in a known form');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new Error('the stored SMTP password cannot be read with this alert secret file (set it again with `alerts smtp`)');
  }
}
