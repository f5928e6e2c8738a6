import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_UNTRUSTED_TEXT, UntrustedText, canonicalJson, sanitizeDeep, sanitizeText } from '../../src/shared';

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('sanitizeText', () => {
  it('cuts a USB product of 1,023 characters and an emoji before the emoji, not inside it', () => {
    const product = `${'x'.repeat(1023)}😀`;
    expect(sanitizeText(product)).toBe('x'.repeat(1023));
    expect(sanitizeText(`${'x'.repeat(1022)}😀`)).toBe(`${'x'.repeat(1022)}😀`);
  });

  it('turns lone surrogates into U+FFFD and keeps pairs', () => {
    expect(sanitizeText('a\uD800b\uDC00c😀')).toBe('a\uFFFDb\uFFFDc😀');
    expect(sanitizeText(null)).toBe('');
    expect(sanitizeText(42)).toBe('42');
  });

  it('always gives text the schema and canonical JSON accept, and keeps well-formed short text as read', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 1500 }), fc.integer({ min: 0, max: MAX_UNTRUSTED_TEXT }), (s, max) => {
        const out = sanitizeText(s, max);
        expect(out.length).toBeLessThanOrEqual(max);
        expect(LONE.test(out)).toBe(false);
        expect(() => canonicalJson(out)).not.toThrow();
        expect(UntrustedText.safeParse(out).success).toBe(true);
        if (!LONE.test(s) && s.length <= max) expect(out).toBe(s);
      }),
    );
  });

  it('sanitizes every string of a nested value, keys included, without touching the original', () => {
    const input = { product: '\uDC00', list: ['ok', `${'y'.repeat(1023)}😀`], n: 1, nested: { '\uD800': true } };
    const out = sanitizeDeep(input);
    expect(out).toEqual({ product: '\uFFFD', list: ['ok', 'y'.repeat(1023)], n: 1, nested: { '\uFFFD': true } });
    expect(input.product).toBe('\uDC00');
  });
});
