/**
 * Canonical JSON: the one serialisation that hashes and signatures are computed over, on the
 * agent and the collector alike.
 *
 * It follows RFC 8785 (JCS) for the values Mamori uses: object keys sorted by UTF-16 code units,
 * no white space, strings and numbers serialised as ECMAScript's JSON.stringify does (which is
 * what JCS prescribes). It is written here rather than taken from the `canonicalize` package
 * because that package is ESM-only (our processes are CommonJS) and because a contract must
 * refuse what cannot round-trip instead of silently changing it: non-finite numbers, `undefined`
 * in arrays, functions, symbols, bigints, lone surrogates and non-plain objects all throw.
 */

/** Thrown when a value cannot be represented in canonical JSON. */
export class CanonicalJsonError extends Error {
  readonly code = 'canonical_json';
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalJsonError';
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function serialiseString(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalJsonError(`lone surrogate in string at ${path}`);
  return JSON.stringify(s);
}

function serialise(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`non-finite number at ${path}`);
      // JSON.stringify gives ECMAScript's shortest round-trip form, as JCS requires; -0 becomes 0.
      return JSON.stringify(value);
    case 'string':
      return serialiseString(value, path);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value
          .map((item, i) => {
            if (item === undefined) throw new CanonicalJsonError(`undefined at ${path}[${i}]`);
            return serialise(item, `${path}[${i}]`);
          })
          .join(',')}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalJsonError(`not a plain object at ${path}`);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${serialiseString(k, path)}:${serialise(record[k], `${path}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new CanonicalJsonError(`${typeof value} is not JSON at ${path}`);
  }
}

/**
 * Serialises `value` canonically.
 * @throws CanonicalJsonError for values JSON cannot carry exactly.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value, '$');
}
