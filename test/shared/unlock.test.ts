import { describe, expect, it } from 'vitest';
import { UnlockCodeError, agentTag, makeRequestCode, makeUnlockCode, parseRequestCode, verifyUnlockCode } from '../../src/shared';

const secret = Buffer.alloc(32, 7).toString('base64');
const otherSecret = Buffer.alloc(32, 9).toString('base64');
const request = makeRequestCode('agent-1', new Uint8Array([1, 2, 3, 4, 5]));

describe('offline unlock codes', () => {
  it('fit on a phone call: 13 and 16 significant characters in dashed groups', () => {
    expect(request).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}$/);
    const unlock = makeUnlockCode(secret, request, 60);
    expect(unlock).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  });

  it('carry the terminal tag so the collector can find the terminal', () => {
    expect(parseRequestCode(request).agentTag).toBe(agentTag('agent-1'));
  });

  it('verify with the same secret and give back the minutes, read back loosely', () => {
    const unlock = makeUnlockCode(secret, request, 90);
    expect(verifyUnlockCode(secret, request, unlock)).toBe(90);
    expect(verifyUnlockCode(secret, request.toLowerCase(), unlock.toLowerCase().replace(/-/g, ' '))).toBe(90);
    expect(verifyUnlockCode(secret, request, unlock.replace(/1/g, 'I').replace(/0/g, 'O'))).toBe(90);
  });

  it('are refused on another terminal, for another request, or when a digit is wrong', () => {
    const unlock = makeUnlockCode(secret, request, 30);
    expect(() => verifyUnlockCode(otherSecret, request, unlock)).toThrow(UnlockCodeError);
    const other = makeRequestCode('agent-1', new Uint8Array([9, 9, 9, 9, 9]));
    expect(() => verifyUnlockCode(secret, other, unlock)).toThrow(UnlockCodeError);
    const last = unlock.at(-1) === 'A' ? 'B' : 'A';
    expect(() => verifyUnlockCode(secret, request, unlock.slice(0, -1) + last)).toThrow(UnlockCodeError);
    expect(() => verifyUnlockCode(secret, request, 'HELLO')).toThrow(/characters/);
  });

  it('cannot carry more minutes than seven days', () => {
    expect(() => makeUnlockCode(secret, request, 7 * 24 * 60 + 1)).toThrow(UnlockCodeError);
    expect(() => makeUnlockCode(secret, request, 0)).toThrow(UnlockCodeError);
  });
});
