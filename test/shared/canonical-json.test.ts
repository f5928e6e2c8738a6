import { describe, expect, it } from 'vitest';
import { CanonicalJsonError, canonicalJson } from '../../src/shared';

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops white space', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('orders keys by UTF-16 code units as RFC 8785 does', () => {
    // "\u20ac" (€) sorts after "\r" and before the astral "😀" (a surrogate pair starting 0xD83D).
    const value = { '😀': 4, '\u20ac': 3, '\r': 1, ö: 2 };
    expect(Object.keys(JSON.parse(canonicalJson(value)))).toEqual(['\r', 'ö', '\u20ac', '😀']);
  });

  it('keeps Japanese text as characters and escapes only what JSON must', () => {
    expect(canonicalJson({ note: '総務課 "配布用"\n' })).toBe('{"note":"総務課 \\"配布用\\"\\n"}');
  });

  it('writes numbers in their shortest round-trip form', () => {
    expect(canonicalJson([1.0, -0, 1e21, 0.1 + 0.2, 1e-7, 123456789012])).toBe('[1,0,1e+21,0.30000000000000004,1e-7,123456789012]');
  });

  it('omits undefined object members but refuses what JSON cannot carry', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(() => canonicalJson([undefined])).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/);
    expect(() => canonicalJson({ n: Infinity })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/plain object/);
    expect(() => canonicalJson({ s: '\ud800' })).toThrow(/surrogate/);
    expect(() => canonicalJson(10n)).toThrow(/bigint/);
  });
});
