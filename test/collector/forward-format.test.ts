import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeCefHeader, escapeCefValue, formatCef, formatRfc5424, frame, inert, type ForwardRecord } from '../../src/collector/forward/format';
import { auditRecord, eventRecord } from '../../src/collector/forward/records';
import { retryDelayMs } from '../../src/collector/forward/forwarder';
import { parse5424 } from './forward-parse';

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const clean = (s: string) => !LONE.test(s) && !CONTROL.test(s);

/** Any text a terminal could send: full Unicode, lone surrogates, controls, and our delimiters. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('"', '\\', ']', '[', '=', '|', '\n', '\r', '\u0000', '\u0085', '\uD800', '\uDC00', 'ア', '😀', ' ', 'a') }),
);

function record(over: Partial<ForwardRecord> = {}): ForwardRecord {
  return {
    kind: 'event',
    at: '2026-12-03T01:02:03.456Z',
    host: 'pc-001',
    type: 'device.blocked',
    severity: 'warning',
    fields: [
      ['terminal', 'agt-1'],
      ['user', '山田 太郎'],
    ],
    message: '{"a":1}',
    ...over,
  };
}

describe('RFC 5424 formatting', () => {
  it('writes header, one SD-ELEMENT and the message after a BOM (RFC 5424 §6)', () => {
    const text = formatRfc5424(record());
    expect(text).toBe('<108>1 2026-12-03T01:02:03.456Z pc-001 mamori - device.blocked [mamori@32473 terminal="agt-1" user="山田 太郎"] \uFEFF{"a":1}');
  });

  it('any field value round-trips through the structured data, or comes back inert', () => {
    fc.assert(
      fc.property(anyText, anyText, (user, serial) => {
        const text = formatRfc5424(
          record({
            fields: [
              ['user', user],
              ['serial', serial],
            ],
          }),
        );
        expect(CONTROL.test(text)).toBe(false);
        expect(LONE.test(text)).toBe(false);
        const parsed = parse5424(text);
        expect(parsed.params.user).toBe(clean(user) ? user : inert(user));
        expect(parsed.params.serial).toBe(clean(serial) ? serial : inert(serial));
      }),
    );
  });

  it('any message and host name stay one line of valid UTF-8, within the size limit', () => {
    fc.assert(
      fc.property(anyText, anyText, fc.integer({ min: 200, max: 2000 }), (message, host, max) => {
        const text = formatRfc5424(record({ message, host, type: host }), max);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(max);
        expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
        expect(/[\n\r]/.test(text)).toBe(false);
        const parsed = parse5424(text);
        expect(parsed.host).toMatch(/^[\x21-\x7e]{1,255}$/);
        expect(parsed.msgid).toMatch(/^[\x21-\x7e]{1,32}$/);
        if (Buffer.byteLength(text) < max - 10 && clean(message)) expect(parsed.msg).toBe(message);
      }),
    );
  });

  it('an event time that is not an RFC 3339 timestamp is sent as NILVALUE', () => {
    expect(parse5424(formatRfc5424(record({ at: '2026-12-03 01:02:03' }))).timestamp).toBe('-');
  });
});

describe('octet-counting framing (RFC 6587 §3.4.1)', () => {
  it('the length prefix is the exact number of bytes of the message', () => {
    fc.assert(
      fc.property(anyText, (message) => {
        const text = formatRfc5424(record({ message }));
        const bytes = frame(text);
        const space = bytes.indexOf(0x20);
        const length = Number(bytes.subarray(0, space).toString('ascii'));
        expect(length).toBe(bytes.length - space - 1);
        expect(bytes.subarray(space + 1).toString('utf8')).toBe(text);
      }),
    );
  });
});

/** Reads CEF back the way a SIEM does: `\|`, `\\` in the header; `\=`, `\\`, `\n`, `\r` in values. */
function parseCef(text: string): { header: string[]; ext: Record<string, string> } {
  const start = text.indexOf('CEF:0|');
  const header: string[] = [];
  let i = start;
  let cur = '';
  while (header.length < 7) {
    const c = text[i]!;
    if (c === '\\') {
      cur += text[i + 1];
      i += 2;
    } else if (c === '|') {
      header.push(cur);
      cur = '';
      i++;
    } else {
      cur += c;
      i++;
    }
  }
  const ext: Record<string, string> = {};
  const body = text.slice(i);
  const keys = [...body.matchAll(/(?:^| )([A-Za-z0-9]+)=/g)].filter((m) => {
    let back = 0;
    for (let j = m.index! + m[0].indexOf(m[1]!) - 1; j >= 0 && body[j] === '\\'; j--) back++;
    return back % 2 === 0;
  });
  keys.forEach((m, k) => {
    const from = m.index! + m[0].length;
    const to = k + 1 < keys.length ? keys[k + 1]!.index! : body.length;
    ext[m[1]!] = body.slice(from, to).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
  });
  return { header, ext };
}

describe('CEF formatting', () => {
  it('escapes | and \\ in the header, = and \\ and newlines in extensions', () => {
    expect(escapeCefHeader('a|b\\c')).toBe('a\\|b\\\\c');
    expect(escapeCefValue('k=v\\x\ny\r')).toBe('k\\=v\\\\x\\ny\\r');
  });

  it('any user name and message round-trip through the extensions, or come back inert', () => {
    fc.assert(
      fc.property(anyText, anyText, anyText, (user, message, type) => {
        const text = formatCef(record({ fields: [['user', user]], message, type }), '0.1.0', 64 * 1024);
        expect(CONTROL.test(text)).toBe(false);
        const cef = parseCef(text);
        expect(cef.header[1]).toBe('Mamori');
        const expected = (s: string) =>
          inert(s.replace(/\r/g, '\uFFFF').replace(/\n/g, '\uFFFE'))
            .replace(/\uFFFF/g, '\r')
            .replace(/\uFFFE/g, '\n');
        if (!/\s$/.test(user) && !/ [A-Za-z0-9]+=/.test(user)) expect(cef.ext.suser).toBe(expected(user));
        if (!/ [A-Za-z0-9]+=/.test(message)) expect(cef.ext.msg).toBe(expected(message));
        expect(cef.header[4]).toBe(inert(type));
      }),
    );
  });
});

describe('records', () => {
  it('an event names its terminal, segment, user and device, Japanese intact', () => {
    const r = eventRecord({
      agent_id: 'agt-1',
      seq: '42',
      at: '2026-12-03T00:00:00.000Z',
      type: 'device.blocked',
      payload: JSON.stringify({ vendorId: '0781', productId: '5581', serial: 'シリアル"1]', manufacturer: 'x', product: 'y', deviceClass: '08', port: '1-1' }),
      hostname: '庁舎PC-01',
      segment: 'mynumber',
    });
    const p = parse5424(formatRfc5424(r));
    expect(p.host).toBe('__PC-01');
    expect(p.params).toMatchObject({
      terminal: 'agt-1',
      hostname: '庁舎PC-01',
      segment: 'mynumber',
      vendor: '0781',
      product: '5581',
      serial: 'シリアル"1]',
      type: 'device.blocked',
      seq: '42',
    });
    expect(p.pri).toBe(13 * 8 + 4);
  });

  it('an audit entry names actor, role, action and target', () => {
    const r = auditRecord(
      {
        id: 7,
        at: '2026-12-03T00:00:00.000Z',
        actor: 'kanri',
        role: 'admin',
        action: 'exception.approve',
        target: 'REQ-1',
        detail: '{"理由":"会議"}',
        address: '10.0.0.1',
      },
      'collector-1',
    );
    const p = parse5424(formatRfc5424(r));
    expect(p.sdId).toBe('mamoriAudit@32473');
    expect(p.params).toMatchObject({ id: '7', actor: 'kanri', role: 'admin', type: 'exception.approve', target: 'REQ-1', address: '10.0.0.1' });
    expect(p.msg).toBe('{"理由":"会議"}');
  });
});

describe('reconnect backoff', () => {
  it('doubles from about a second and never passes the cap', () => {
    expect(retryDelayMs(1, 30_000, () => 1)).toBe(1000);
    expect(retryDelayMs(3, 30_000, () => 1)).toBe(4000);
    expect(retryDelayMs(50, 30_000, () => 1)).toBe(30_000);
    expect(retryDelayMs(50, 30_000, () => 0)).toBe(15_000);
  });
});
