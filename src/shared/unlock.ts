import { hmac } from '@noble/hashes/hmac';
import { sha256 } from '@noble/hashes/sha2';
import { utf8ToBytes } from '@noble/hashes/utils';

/**
 * Offline unlock codes, read aloud over the phone.
 *
 * A terminal's request code is 8 bytes: the first 3 bytes of SHA-256(agentId), so the collector can
 * find the terminal, and 5 random bytes naming the request. The response (unlock) code is 10
 * bytes: the granted minutes (uint16) and the first 8 bytes of
 * HMAC-SHA256(per-agent secret, "mamori-unlock-v1|" + request code + "|" + minutes). Only the
 * collector and that terminal's agent hold the secret, so a code works for that request on that
 * terminal only, and the agent marks the request used so it works once.
 *
 * Both codes are written in Crockford's base32 (no I, L, O, U; read back case-insensitively with
 * I/L as 1 and O as 0), grouped by dashes: request `XXXX-XXXX-XXXXX` (13), unlock
 * `XXXX-XXXX-XXXX-XXXX` (16 significant characters).
 */

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The largest grant an unlock code can carry: seven days. */
export const MAX_UNLOCK_MINUTES = 7 * 24 * 60;

export class UnlockCodeError extends Error {
  readonly code = 'unlock_refused';
  constructor(message: string) {
    super(message);
    this.name = 'UnlockCodeError';
  }
}

function encode(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function decode(text: string, byteLength: number): Uint8Array {
  const clean = normaliseCode(text);
  if (clean.length !== Math.ceil((byteLength * 8) / 5)) throw new UnlockCodeError(`a code of ${Math.ceil((byteLength * 8) / 5)} characters was expected`);
  const out = new Uint8Array(byteLength);
  let bits = 0;
  let value = 0;
  let index = 0;
  for (const ch of clean) {
    const digit = ALPHABET.indexOf(ch);
    if (digit < 0) throw new UnlockCodeError(`'${ch}' is not a code character`);
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8 && index < byteLength) {
      out[index++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** Upper-cases, drops dashes and spaces, and reads I/L as 1 and O as 0. */
export function normaliseCode(text: string): string {
  return text.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
}

function group(code: string, sizes: number[]): string {
  const parts: string[] = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(code.slice(at, at + size));
    at += size;
  }
  return parts.join('-');
}

/** The 3-byte tag of an agent id that a request code carries. */
export function agentTag(agentId: string): string {
  return Array.from(sha256(utf8ToBytes(agentId)).slice(0, 3), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Makes a request code for `agentId` from 5 random bytes. */
export function makeRequestCode(agentId: string, random: Uint8Array): string {
  if (random.length !== 5) throw new Error('a request code needs 5 random bytes');
  const bytes = new Uint8Array(8);
  bytes.set(sha256(utf8ToBytes(agentId)).slice(0, 3), 0);
  bytes.set(random, 3);
  return group(encode(bytes), [4, 4, 5]);
}

/** The agent tag (hex) inside a request code. @throws UnlockCodeError when it is malformed. */
export function parseRequestCode(code: string): { agentTag: string; normalised: string } {
  const bytes = decode(code, 8);
  return {
    agentTag: Array.from(bytes.slice(0, 3), (b) => b.toString(16).padStart(2, '0')).join(''),
    normalised: normaliseCode(code),
  };
}

function mac(secretBase64: string, requestCode: string, minutes: number): Uint8Array {
  const secret = base64ToBytes(secretBase64);
  return hmac(sha256, secret, utf8ToBytes(`mamori-unlock-v1|${normaliseCode(requestCode)}|${minutes}`)).slice(0, 8);
}

/** The unlock code answering `requestCode` with a grant of `minutes`. */
export function makeUnlockCode(secretBase64: string, requestCode: string, minutes: number): string {
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_UNLOCK_MINUTES) {
    throw new UnlockCodeError(`minutes must be a whole number from 1 to ${MAX_UNLOCK_MINUTES}`);
  }
  parseRequestCode(requestCode);
  const bytes = new Uint8Array(10);
  bytes[0] = minutes >>> 8;
  bytes[1] = minutes & 0xff;
  bytes.set(mac(secretBase64, requestCode, minutes), 2);
  return group(encode(bytes), [4, 4, 4, 4]);
}

/**
 * Checks an unlock code against a request code with this terminal's secret.
 * @returns the granted minutes.
 * @throws UnlockCodeError when the code is malformed or was not made for this request here.
 */
export function verifyUnlockCode(secretBase64: string, requestCode: string, unlockCode: string): number {
  const bytes = decode(unlockCode, 10);
  const minutes = (bytes[0]! << 8) | bytes[1]!;
  if (minutes < 1 || minutes > MAX_UNLOCK_MINUTES) throw new UnlockCodeError('the code is not valid');
  const expected = mac(secretBase64, requestCode, minutes);
  let diff = 0;
  for (let i = 0; i < 8; i++) diff |= expected[i]! ^ bytes[2 + i]!;
  if (diff !== 0) throw new UnlockCodeError('the code is not valid for this request on this terminal');
  return minutes;
}

function base64ToBytes(b64: string): Uint8Array {
  // atob exists in Node ≥ 16 and every browser; shared code must not use Buffer.
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
