/**
 * Pure formatters of forwarded records: RFC 5424 syslog messages, CEF, and RFC 6587 octet-counting
 * frames (docs/design.md#forwarding-to-a-siem). No I/O here; everything a terminal or an admin
 * typed is untrusted and comes out inert: no control character, no lone surrogate, no unescaped
 * delimiter.
 */

/** One thing to forward: an event received from a terminal, or an admin audit entry. */
export interface ForwardRecord {
  kind: 'event' | 'audit';
  /** When it happened (ISO 8601); an unparseable value is sent as NILVALUE. */
  at: string;
  /** The originating host: the terminal's host name for an event, the collector's for an audit entry. */
  host: string;
  /** The event type or the audit action (MSGID, CEF signature id). */
  type: string;
  severity: Severity;
  /** Structured fields in a fixed order; undefined values are left out. */
  fields: ReadonlyArray<readonly [name: FieldName, value: string | number | undefined]>;
  /** Free text: the event payload or the audit detail, as JSON. */
  message: string;
}

export type Severity = 'warning' | 'notice' | 'info';

/** Field names, valid as RFC 5424 PARAM-NAMEs and CEF keys. */
export const FIELD_NAMES = [
  'terminal',
  'hostname',
  'segment',
  'user',
  'vendor',
  'product',
  'serial',
  'type',
  'seq',
  'actor',
  'role',
  'target',
  'address',
  'id',
] as const;
export type FieldName = (typeof FIELD_NAMES)[number];

/**
 * The SD-ID of our structured data. 32473 is the enterprise number RFC 5612 reserves for
 * documentation; a site with its own IANA number may want it here (docs/design.md).
 */
export const SD_ID = {
  event: 'mamori@32473',
  audit: 'mamoriAudit@32473',
} as const;

/** RFC 5424 facility 13 ("log audit"). */
const FACILITY = 13;
const SEVERITY_CODE: Record<Severity, number> = {
  warning: 4,
  notice: 5,
  info: 6,
};
const CEF_SEVERITY: Record<Severity, number> = {
  warning: 7,
  notice: 5,
  info: 3,
};

/** The largest message (without its frame) we send; rsyslog's default limit is 8 KiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8192;

const BOM = '\uFEFF';
const encoder = new TextEncoder();

/** Bytes of a string in UTF-8. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Makes text inert: lone surrogates and control characters (C0, DEL, C1) become U+FFFD, so
 * nothing a terminal sent can end a line, a frame or a field.
 */
export function inert(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD').replace(CONTROL, '\uFFFD');
}

/** RFC 5424 PRINTUSASCII (33–126) only, up to `max` characters, NILVALUE when empty. */
function printAscii(text: string, max: number): string {
  const out = text.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return out === '' ? '-' : out;
}

/** RFC 5424 §6.3.3: `"`, `\` and `]` are escaped in PARAM-VALUE. */
export function escapeSdValue(value: string): string {
  return inert(value).replace(/["\\\]]/g, (c) => `\\${c}`);
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

/** An RFC 5424 TIMESTAMP, or NILVALUE for anything that is not one. */
function timestamp(at: string): string {
  return TIMESTAMP.test(at) && !Number.isNaN(Date.parse(at)) ? at : '-';
}

/**
 * `transform(text)`, shortened by whole code points of `text` (marked with an ellipsis) until it
 * fits in `maxBytes` of UTF-8. Cutting before the transform never splits an escape sequence.
 */
function fitBytes(text: string, maxBytes: number, transform: (t: string) => string): string {
  const whole = transform(text);
  if (utf8Length(whole) <= maxBytes) return whole;
  const chars = Array.from(text);
  const cut = (n: number) => transform(`${chars.slice(0, n).join('')}…`);
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (utf8Length(cut(mid)) <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  const out = cut(lo);
  return utf8Length(out) <= maxBytes ? out : '';
}

function header(record: ForwardRecord): string {
  const pri = FACILITY * 8 + SEVERITY_CODE[record.severity];
  return `<${pri}>1 ${timestamp(record.at)} ${printAscii(record.host, 255)} mamori - ${printAscii(record.type, 32)}`;
}

/**
 * An RFC 5424 message: header, one SD-ELEMENT with the record's fields, and the message as
 * UTF-8 with its BOM (§6.4). The message is cut, never the structured data, to keep the whole
 * within `maxBytes`.
 */
export function formatRfc5424(record: ForwardRecord, maxBytes = DEFAULT_MAX_MESSAGE_BYTES): string {
  const params = record.fields.filter(([, v]) => v !== undefined).map(([name, v]) => `${name}="${escapeSdValue(String(v))}"`);
  const head = `${header(record)} [${SD_ID[record.kind]}${params.length ? ' ' : ''}${params.join(' ')}] ${BOM}`;
  return head + fitBytes(record.message, Math.max(0, maxBytes - utf8Length(head)), inert);
}

/** CEF header fields: `\` and `|` escaped; inert. */
export function escapeCefHeader(value: string): string {
  return inert(value).replace(/[\\|]/g, (c) => `\\${c}`);
}

/** CEF extension values: `\` and `=` escaped, CR and LF written as `\r` and `\n`; other controls inert. */
export function escapeCefValue(value: string): string {
  return inert(value.replace(/[\\=\r\n]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\${c}`)));
}

const CEF_KEYS: Record<FieldName, string> = {
  terminal: 'deviceExternalId',
  hostname: 'shost',
  segment: 'cs1',
  user: 'suser',
  vendor: 'cs2',
  product: 'cs3',
  serial: 'cs4',
  type: 'cat',
  seq: 'cn1',
  actor: 'suser',
  role: 'spriv',
  target: 'duser',
  address: 'src',
  id: 'externalId',
};
const CEF_LABELS: Partial<Record<string, string>> = {
  cs1: 'segment',
  cs2: 'usbVendorId',
  cs3: 'usbProductId',
  cs4: 'usbSerial',
  cn1: 'seq',
};

/**
 * A CEF:0 record (`CEF:0|Mamori|Mamori|VERSION|TYPE|NAME|SEVERITY|EXTENSIONS`), sent as the MSG
 * of an RFC 5424 message without structured data.
 */
export function formatCef(record: ForwardRecord, version: string, maxBytes = DEFAULT_MAX_MESSAGE_BYTES): string {
  const ext: string[] = [];
  const rt = Date.parse(record.at);
  if (!Number.isNaN(rt)) ext.push(`rt=${rt}`);
  for (const [name, value] of record.fields) {
    if (value === undefined) continue;
    const key = CEF_KEYS[name];
    if (CEF_LABELS[key]) ext.push(`${key}Label=${CEF_LABELS[key]}`);
    ext.push(`${key}=${escapeCefValue(String(value))}`);
  }
  const name = record.kind === 'event' ? 'terminal event' : 'admin audit entry';
  const cefHead = ['CEF:0', 'Mamori', 'Mamori', version, record.type, name, String(CEF_SEVERITY[record.severity])]
    .map((v, i) => (i === 0 ? v : escapeCefHeader(v)))
    .join('|');
  const head = `${header(record)} - ${BOM}${cefHead}|${ext.join(' ')} msg=`;
  return head + fitBytes(record.message, Math.max(0, maxBytes - utf8Length(head)), escapeCefValue);
}

/** RFC 6587 §3.4.1 octet-counting: `MSG-LEN SP SYSLOG-MSG`, the length in bytes. */
export function frame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}
