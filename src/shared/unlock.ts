import { hmac } from '@noble/hashes/hmac';
import { sha256 } from '@noble/hashes/sha2';
import { utf8ToBytes } from '@noble/hashes/utils';

/**
 * Offline unlock codes, read aloud over the phone (format version 2).
 *
 * An exception is for one exact device, its scope: vendor and product id plus a usable serial, or
 * the port when the device has none (`ExceptionScope`). A terminal's request code is 10 bytes: the
 * first 3 bytes of SHA-256(agentId), so the collector can find the terminal, the first 2 bytes of
 * the scope's hash, so the collector can tell a device read out wrongly, and 5 random bytes naming
 * the request. The response (unlock) code is 10 bytes: the format version (top 2 bits, 01) and the
 * granted minutes (14 bits), then the first 8 bytes of HMAC-SHA256(per-agent secret,
 * "mamori-unlock-v2|" + request code + "|" + minutes + "|" + scope hash). Only the collector and
 * that terminal's agent hold the secret, so a code works for that request, that device and that
 * terminal only, and the agent marks the request used so it works once. Codes of version 1 (no
 * scope) are refused.
 *
 * Both codes are written in Crockford's base32 (no I, L, O, U; read back case-insensitively with
 * I/L as 1 and O as 0), grouped by dashes: request `XXXXX-XXXXX-XXXXXX` (16), unlock
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
  return decodeClean(clean, byteLength);
}

function decodeClean(clean: string, byteLength: number): Uint8Array {
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
  return toHex(sha256(utf8ToBytes(agentId)).slice(0, 3));
}

/**
 * The exact device an exception is for: vendor and product id and either a usable serial or,
 * for a device without one, the USB port it was blocked on. Nothing broader exists.
 */
export interface ExceptionScope {
  vendorId: string;
  productId: string;
  serial?: string;
  port?: string;
}

const HEX4 = /^[0-9a-f]{4}$/;

/** Windows invents serials containing `&` for devices that report none: they identify nothing. */
export function isUsableSerial(serial: string | undefined): serial is string {
  return typeof serial === 'string' && serial.trim() !== '' && !serial.includes('&');
}

/**
 * The scope of a blocked device: its ids and its serial when usable, else its port.
 * @throws UnlockCodeError when the ids are not 4 hex digits or neither serial nor port is known.
 */
export function scopeOfDevice(device: { vendorId?: string; productId?: string; serial?: string; port?: string }): ExceptionScope {
  const vendorId = (device.vendorId ?? '').toLowerCase();
  const productId = (device.productId ?? '').toLowerCase();
  if (!HEX4.test(vendorId) || !HEX4.test(productId)) throw new UnlockCodeError('an exception needs the vendor and product id of one device');
  if (isUsableSerial(device.serial)) return { vendorId, productId, serial: device.serial.trim() };
  if (device.port && device.port.trim() !== '') return { vendorId, productId, port: device.port.trim() };
  throw new UnlockCodeError('the device has no usable serial and no port: an exception could not name it alone');
}

/** True when `scope` names exactly one device (ids plus exactly one of serial and port). */
export function isExactScope(scope: Partial<ExceptionScope> | undefined): scope is ExceptionScope {
  if (!scope || !HEX4.test(scope.vendorId ?? '') || !HEX4.test(scope.productId ?? '')) return false;
  return isUsableSerial(scope.serial) !== (typeof scope.port === 'string' && scope.port.trim() !== '');
}

/** The scope as approvers read it: `0781:5583 serial 4C530001` or `0781:5583 port 1-2`. */
export function formatScope(scope: ExceptionScope): string {
  return `${scope.vendorId}:${scope.productId} ${scope.serial !== undefined ? `serial ${scope.serial}` : `port ${scope.port ?? ''}`}`;
}

/**
 * Reads a scope written as `formatScope` writes it (as the tray shows it, read over the phone).
 * @throws UnlockCodeError when it is not `VVVV:PPPP serial S` or `VVVV:PPPP port P`.
 */
export function parseScope(text: string): ExceptionScope {
  const m = /^\s*([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\s+(serial|port)\s+(\S(?:.*\S)?)\s*$/.exec(text);
  if (!m) throw new UnlockCodeError('write the device as VVVV:PPPP serial SERIAL or VVVV:PPPP port PORT, as the terminal shows it');
  const device = { vendorId: m[1]!, productId: m[2]!, ...(m[3] === 'serial' ? { serial: m[4]! } : { port: m[4]! }) };
  const scope = scopeOfDevice(device);
  if (m[3] === 'serial' && scope.serial === undefined) throw new UnlockCodeError('that serial cannot identify a device');
  return scope;
}

/** SHA-256 of the scope (64 hex), which the unlock HMAC covers. */
export function scopeHash(scope: ExceptionScope): string {
  const kind = scope.serial !== undefined ? ['serial', scope.serial] : ['port', scope.port ?? ''];
  return toHex(sha256(utf8ToBytes(JSON.stringify(['mamori-device-v1', scope.vendorId, scope.productId, ...kind]))));
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const REQUEST_BYTES = 10;
const V1_REQUEST_CHARS = 13;

/** Makes a request code for `agentId` and the device `scope` from 5 random bytes. */
export function makeRequestCode(agentId: string, scope: ExceptionScope, random: Uint8Array): string {
  if (random.length !== 5) throw new Error('a request code needs 5 random bytes');
  const bytes = new Uint8Array(REQUEST_BYTES);
  bytes.set(sha256(utf8ToBytes(agentId)).slice(0, 3), 0);
  bytes.set(sha256(utf8ToBytes(scopeHash(scope))).slice(0, 2), 3);
  bytes.set(random, 5);
  return group(encode(bytes), [5, 5, 6]);
}

/**
 * The agent tag and device tag (hex) inside a request code.
 * @throws UnlockCodeError when it is malformed or of the old format without a device.
 */
export function parseRequestCode(code: string): { agentTag: string; deviceTag: string; normalised: string } {
  const clean = normaliseCode(code);
  if (clean.length === V1_REQUEST_CHARS)
    throw new UnlockCodeError('this request code is of the old format, which names no device; ask for a new request from the terminal');
  const bytes = decode(code, REQUEST_BYTES);
  return { agentTag: toHex(bytes.slice(0, 3)), deviceTag: toHex(bytes.slice(3, 5)), normalised: clean };
}

/** True when `scope` is the device a request code was made for (by its 2-byte tag). */
export function scopeMatchesRequest(requestCode: string, scope: ExceptionScope): boolean {
  return parseRequestCode(requestCode).deviceTag === toHex(sha256(utf8ToBytes(scopeHash(scope))).slice(0, 2));
}

const UNLOCK_VERSION = 1; // the top 2 bits: 0 was the format without a device

function mac(secretBase64: string, requestCode: string, minutes: number, scope: ExceptionScope): Uint8Array {
  const secret = base64ToBytes(secretBase64);
  return hmac(sha256, secret, utf8ToBytes(`mamori-unlock-v2|${normaliseCode(requestCode)}|${minutes}|${scopeHash(scope)}`)).slice(0, 8);
}

/**
 * The unlock code answering `requestCode` with a grant of `minutes` for the device `scope`.
 * @throws UnlockCodeError for minutes out of range, a malformed or old request code, or a scope
 *   that is not the device the request code was made for.
 */
export function makeUnlockCode(secretBase64: string, requestCode: string, minutes: number, scope: ExceptionScope): string {
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_UNLOCK_MINUTES) {
    throw new UnlockCodeError(`minutes must be a whole number from 1 to ${MAX_UNLOCK_MINUTES}`);
  }
  if (!isExactScope(scope)) throw new UnlockCodeError('an unlock code is only for one exact device');
  if (!scopeMatchesRequest(requestCode, scope)) throw new UnlockCodeError(`the device ${formatScope(scope)} is not the one this request code was made for`);
  const bytes = new Uint8Array(10);
  bytes[0] = (UNLOCK_VERSION << 6) | (minutes >>> 8);
  bytes[1] = minutes & 0xff;
  bytes.set(mac(secretBase64, requestCode, minutes, scope), 2);
  return group(encode(bytes), [4, 4, 4, 4]);
}

/**
 * Checks an unlock code against a request code and its device with this terminal's secret.
 * @returns the granted minutes.
 * @throws UnlockCodeError when the code is malformed, of the old format, or was not made for this
 *   request, this device and this terminal.
 */
export function verifyUnlockCode(secretBase64: string, requestCode: string, unlockCode: string, scope: ExceptionScope): number {
  const bytes = decode(unlockCode, 10);
  if (bytes[0]! >>> 6 !== UNLOCK_VERSION) throw new UnlockCodeError('this unlock code is of an old format; ask for a new one');
  const minutes = ((bytes[0]! & 0x3f) << 8) | bytes[1]!;
  if (minutes < 1 || minutes > MAX_UNLOCK_MINUTES) throw new UnlockCodeError('the code is not valid');
  const expected = mac(secretBase64, requestCode, minutes, scope);
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
