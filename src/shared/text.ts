/**
 * The one sanitizer for untrusted text (device descriptors, OS tool output, log records, error
 * messages that quote them). Every string an agent source hands to an event or a snapshot passes
 * through it, so a hostile or merely odd string can neither make an event invalid nor stop
 * recording: it is bounded and made representable in canonical JSON, otherwise kept as read.
 */

/** The longest untrusted string kept, in UTF-16 code units (what `UntrustedText` allows). */
export const MAX_UNTRUSTED_TEXT = 1024;

const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `value` as bounded, well-formed text: lone surrogates become U+FFFD, and text longer than `max`
 * UTF-16 code units is cut at a code-point boundary (a surrogate pair is never split), so the
 * result is at most `max` code units. `null` and `undefined` give `''`; other values are
 * stringified. Never throws.
 */
export function sanitizeText(value: unknown, max: number = MAX_UNTRUSTED_TEXT): string {
  let s: string;
  try {
    s = value === undefined || value === null ? '' : String(value);
  } catch {
    s = '';
  }
  s = s.replace(LONE_SURROGATES, '\uFFFD');
  if (s.length <= max) return s;
  let end = Math.max(0, max);
  // Cutting between a high and a low surrogate would leave a lone high surrogate: cut before it.
  const last = s.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return s.slice(0, end);
}

/**
 * Every string in a JSON-like value (plain objects, arrays, primitives) sanitized with
 * `sanitizeText`, keys included; the value is copied, never modified. Other values are returned
 * as they are.
 */
export function sanitizeDeep<T>(value: T, max: number = MAX_UNTRUSTED_TEXT): T {
  if (typeof value === 'string') return sanitizeText(value, max) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => sanitizeDeep(item, max)) as T;
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[sanitizeText(k, max)] = sanitizeDeep(v, max);
    return out as T;
  }
  return value;
}
