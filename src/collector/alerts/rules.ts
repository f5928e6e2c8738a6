import { MamoriError, SEGMENTS } from '../../shared';
import { LANGUAGES, type AlertKind, type FactLabel, type Language } from './messages';

/** The alert types a rule can name (docs/design.md#alert-mail). */
export const ALERT_TYPES = [
  'incident',
  'tamper',
  'drift',
  'chain_broken',
  'degraded',
  'not_seen',
  'agent_stopped',
  'exception_requested',
  'blocked_digest',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export const DIGEST_PERIODS = ['hourly', 'daily'] as const;
export type DigestPeriod = (typeof DIGEST_PERIODS)[number];

export interface Recipient {
  address: string;
  language: Language;
}

export interface RuleOptions {
  /** `not_seen`: days without contact (default 7). */
  days?: number;
  /** `blocked_digest`: the digest's period (default hourly). */
  period?: DigestPeriod;
  /** Mails this rule sends per hour at most; more are kept as `suppressed` (default 30). */
  ratePerHour?: number;
}

export interface RuleConfig {
  type: AlertType;
  /** A segment, or `*` for every terminal. */
  segment: string;
  recipients: Recipient[];
  options: RuleOptions;
}

export interface Rule extends RuleConfig {
  id: number;
  createdAt: string;
}

export const DEFAULT_RATE_PER_HOUR = 30;
export const DEFAULT_NOT_SEEN_DAYS = 7;

/** A deliberately plain address: no display name, no quoting, no CR/LF, nothing a header could be split by. */
const ADDRESS = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$/;

/** True for an address alert mail may be sent to or from. */
export function isPlainAddress(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 254 && ADDRESS.test(value);
}

const fail = (msg: string): never => {
  throw new MamoriError('validation_failed', msg);
};

function refuseUnknown(input: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(input)) if (!known.includes(key)) fail(`${where}unknown field '${key}'`);
}

/**
 * Reads `address` or `address:ja|en` (default ja).
 * @throws MamoriError `validation_failed`.
 */
export function parseRecipient(text: string): Recipient {
  const match = /^([\s\S]*?)(?::(ja|en))?$/.exec(text)!;
  if (!isPlainAddress(match[1])) fail(`recipient: a plain mail address (optionally :ja or :en), not '${text.replace(/[\r\n]/g, ' ')}'`);
  return { address: match[1]!, language: (match[2] as Language | undefined) ?? 'ja' };
}

/**
 * Checks a rule an admin gave, field by field.
 * @throws MamoriError `validation_failed` naming the field (an unknown field is refused by name).
 */
export function validateRule(input: Record<string, unknown>): RuleConfig {
  refuseUnknown(input, ['type', 'segment', 'recipients', 'options'], '');
  const { type, segment, recipients, options = {} } = input;
  if (!(ALERT_TYPES as readonly unknown[]).includes(type)) fail(`type: one of ${ALERT_TYPES.join(', ')}, not '${String(type)}'`);
  if (segment !== '*' && !(SEGMENTS as readonly unknown[]).includes(segment)) fail(`segment: * or one of ${SEGMENTS.join(', ')}`);
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > 50) fail('recipients: 1 to 50 recipients');
  const list = (recipients as unknown[]).map((r, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return fail(`recipients[${i}]: {address, language}`);
    const rec = r as Record<string, unknown>;
    refuseUnknown(rec, ['address', 'language'], `recipients[${i}]: `);
    if (!isPlainAddress(rec.address)) fail(`recipients[${i}].address: a plain mail address`);
    if (!(LANGUAGES as readonly unknown[]).includes(rec.language)) fail(`recipients[${i}].language: ja or en`);
    return { address: rec.address as string, language: rec.language as Language };
  });
  if (typeof options !== 'object' || options === null || Array.isArray(options)) fail('options: an object');
  const opts = options as Record<string, unknown>;
  refuseUnknown(opts, ['days', 'period', 'ratePerHour'], 'options: ');
  const int = (key: string, min: number, max: number) => {
    const v = opts[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) fail(`options.${key}: a whole number from ${min} to ${max}`);
  };
  int('days', 1, 3650);
  int('ratePerHour', 1, 10_000);
  if (opts.period !== undefined && !(DIGEST_PERIODS as readonly unknown[]).includes(opts.period)) fail('options.period: hourly or daily');
  if (opts.days !== undefined && type !== 'not_seen') fail('options.days applies to not_seen only');
  if (opts.period !== undefined && type !== 'blocked_digest') fail('options.period applies to blocked_digest only');
  return { type: type as AlertType, segment: segment as string, recipients: list, options: opts as RuleOptions };
}

/** What one alert says, before it is put into words: the same facts for every recipient. */
export interface AlertFacts {
  kind: AlertKind;
  /** Unique per happening: the same key is mailed once to each recipient. */
  key: string;
  /** Raised by one rule's own check (a digest, a silent terminal): for that rule only. */
  ruleId?: number;
  segment?: string;
  /** Facts in the order the body lists them; values are untrusted text. */
  facts: [FactLabel, string | number][];
  /** Values the subject's `{name}` placeholders take. */
  vars: Record<string, string | number>;
  /** A console path (`/incidents/<agentId>:<receipt>`), joined to the console URL when one is set. */
  link?: string;
}

/** An event row as the evaluator reads it. */
export interface AlertEvent {
  agent_id: string;
  seq: number;
  at: string;
  type: string;
  payload: string;
  hostname: string;
  segment: string;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

function deviceText(d: unknown): string {
  if (typeof d !== 'object' || d === null) return '';
  const dev = d as Record<string, unknown>;
  return [
    dev.vendorId && dev.productId ? `${str(dev.vendorId)}:${str(dev.productId)}` : '',
    str(dev.manufacturer),
    str(dev.product),
    dev.serial ? `serial ${str(dev.serial)}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/**
 * The alert an event raises, if any (pure: docs/design.md#alert-mail). Chain breaks, silent
 * terminals and digests come from the collector's state, not from one event (see evaluator.ts).
 */
export function alertForEvent(e: AlertEvent): AlertFacts | undefined {
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(e.payload) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const base: [FactLabel, string | number][] = [
    ['hostname', e.hostname],
    ['agentId', e.agent_id],
    ['segment', e.segment],
    ['at', e.at],
  ];
  const key = `event:${e.agent_id}:${e.seq}`;
  const vars = { hostname: e.hostname };
  const make = (kind: AlertKind, facts: [FactLabel, string | number][], extra: Record<string, string | number> = {}, link?: string): AlertFacts => ({
    kind,
    key,
    segment: e.segment,
    facts: [...base, ...facts],
    vars: { ...vars, ...extra },
    link,
  });
  switch (e.type) {
    case 'incident.reported':
      return make(
        'incident',
        [
          ['receipt', str(p.receipt)],
          ['category', str(p.category)],
          ['contact', str(p.contact)],
          ['description', str(p.description)],
        ],
        { receipt: str(p.receipt) },
        `/incidents/${encodeURIComponent(e.agent_id)}:${encodeURIComponent(str(p.receipt))}`,
      );
    case 'tamper.detected':
      return make('tamper', [
        ['what', str(p.what)],
        ['detail', str(p.detail)],
        ['device', deviceText(p.device)],
      ]);
    case 'policy.drift_corrected':
      return make('drift', [
        ['control', str(p.control)],
        ['expected', str(p.expected)],
        ['found', str(p.found)],
        ['device', deviceText(p.device)],
      ]);
    case 'policy.applied':
      return p.enforcement === 'degraded' ? make('degraded', []) : undefined;
    case 'agent.stopped':
      // A release for an uninstall says so (src/agent/cli.ts); that is expected, not an alert.
      return /\(uninstall\)/.test(str(p.reason)) ? undefined : make('agent_stopped', [['reason', str(p.reason)]]);
    case 'exception.requested':
      return make(
        'exception_requested',
        [
          ['requestCode', str(p.requestCode)],
          ['device', deviceText(p.device)],
          ['minutes', typeof p.minutes === 'number' ? p.minutes : ''],
          ['reason', str(p.reason)],
        ],
        { requestCode: str(p.requestCode) },
      );
    default:
      return undefined;
  }
}

/** The rule type an alert kind answers to. */
export function ruleTypeOf(kind: AlertKind): AlertType | undefined {
  return kind === 'test' ? undefined : kind;
}

/** True when `rule` asks for `alert`. */
export function ruleMatches(rule: RuleConfig | Rule, alert: AlertFacts): boolean {
  if (alert.ruleId !== undefined && 'id' in rule && rule.id !== alert.ruleId) return false;
  return ruleTypeOf(alert.kind) === rule.type && (rule.segment === '*' || rule.segment === alert.segment);
}

/** The digest period that ended last before `now` (UTC hours; days end at midnight Japan time). */
export function lastDigestPeriod(period: DigestPeriod, now: Date): { from: Date; to: Date } {
  const hour = 3_600_000;
  if (period === 'hourly') {
    const to = new Date(Math.floor(now.getTime() / hour) * hour);
    return { from: new Date(to.getTime() - hour), to };
  }
  const jst = 9 * hour;
  const day = 24 * hour;
  const to = new Date(Math.floor((now.getTime() + jst) / day) * day - jst);
  return { from: new Date(to.getTime() - day), to };
}
