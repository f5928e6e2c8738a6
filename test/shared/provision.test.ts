import { describe, expect, it } from 'vitest';
import { parseProvision, provisionFromArgs } from '../../src/shared';

describe('installer provisioning', () => {
  it('reads NSIS and MSI style arguments and ignores the installer’s own', () => {
    expect(
      provisionFromArgs(['/S', '/COLLECTOR=https://mamori.city.lg.jp:8765', '/TOKEN=enr_abcdefgh', '/SEGMENT=mynumber', '/D=C:\\Program Files\\Mamori']),
    ).toEqual({
      collectorUrl: 'https://mamori.city.lg.jp:8765',
      token: 'enr_abcdefgh',
      segment: 'mynumber',
    });
    expect(
      provisionFromArgs(['/qn', 'COLLECTOR="https://c:8765"', 'token=enr_12345678', 'SEGMENT=lgwan', 'PUBKEY=MCowBQYDK2VwAyEA' + 'A'.repeat(43)]),
    ).toMatchObject({ collectorUrl: 'https://c:8765', token: 'enr_12345678', segment: 'lgwan' });
  });

  it('refuses a bad provision with one message naming every problem', () => {
    expect(() => parseProvision({ collectorUrl: 'mamori.city.lg.jp', segment: 'kokuho' })).toThrow(/invalid provisioning: .*collectorUrl.*token.*segment/);
    expect(() => parseProvision({ collectorUrl: 'ftp://x', token: 'enr_12345678', segment: 'mynumber' })).toThrow(/https/);
    expect(() => parseProvision({ collectorUrl: 'https://x', token: 'enr_12345678', segment: 'mynumber', extra: 1 })).toThrow(/extra|Unrecognized/i);
    expect(parseProvision({ collectorUrl: 'https://x:8765', token: 'enr_12345678', segment: 'internet' }).segment).toBe('internet');
  });
});
