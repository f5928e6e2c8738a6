import type { AlertFacts } from './rules';
import { MESSAGES, type Language } from './messages';

/** A mail as the outbox keeps it. */
export interface MailText {
  subject: string;
  body: string;
}

// Control and format characters (CR, LF, NUL, bidi overrides, line and paragraph separators) make
// a value inert: in a header they would start a new one, in a body they would fake a line.
const CONTROLS = /[\p{Cc}\p{Cf}\u2028\u2029]+/gu;

/** One line of text, controls replaced by spaces, at most `max` characters: safe in a header. */
export function oneLine(value: string | number, max = 200): string {
  const text = String(value).replace(CONTROLS, ' ').replace(/ {2,}/g, ' ').trim();
  return [...text].length > max ? `${[...text].slice(0, max - 1).join('')}…` : text;
}

/** A body value: its own lines kept but indented, so no value can pass for a label line of ours. */
function bodyValue(value: string | number, max = 4000): string {
  const lines = String(value)
    .slice(0, max)
    .split(/\r\n|\r|\n/)
    .map((l) => oneLine(l, max));
  return lines.join('\n    ');
}

/** `2026年11月22日 09:05` (Japan time) in Japanese, ISO 8601 in English. */
export function formatTime(iso: string, language: Language): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (language === 'en') return d.toISOString();
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('ja-JP', {
      timeZone: 'Asia/Tokyo',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}年${parts.month}月${parts.day}日 ${parts.hour}:${parts.minute}`;
}

function fill(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => (name in vars ? oneLine(vars[name]!, 80) : ''));
}

/**
 * Puts an alert into words for one recipient: plain text only. Every value is made inert
 * (controls replaced) before it reaches the subject, and indented in the body.
 */
export function formatMail(alert: AlertFacts, language: Language, consoleUrl?: string): MailText {
  const m = MESSAGES[language];
  const text = m.kinds[alert.kind];
  const vars: Record<string, string | number> = { ...alert.vars };
  if (typeof vars.period === 'string' && vars.period in m.periods) vars.period = m.periods[vars.period as keyof typeof m.periods];
  const lines = [fill(text.lead, vars), ''];
  for (const [label, raw] of alert.facts) {
    if (raw === '') continue;
    let value: string | number = raw;
    if (label === 'at' || label === 'lastSeen') value = formatTime(String(raw), language);
    else if (label === 'segment') value = m.segments[raw as keyof typeof m.segments] ?? raw;
    else if (label === 'category') value = m.categories[raw as keyof typeof m.categories] ?? raw;
    else if (label === 'period') value = m.periods[raw as keyof typeof m.periods] ?? raw;
    lines.push(`${m.labels[label]}: ${bodyValue(value)}`);
  }
  if (alert.link) lines.push(`${m.labels.link}: ${(consoleUrl ?? '').replace(/\/+$/, '')}${alert.link}`);
  lines.push('', '--', m.footer, '');
  return { subject: oneLine(`${m.prefix}${fill(text.subject, vars)}`, 200), body: lines.join('\n') };
}
