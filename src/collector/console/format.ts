import type { Lang } from './messages';

/** The zone the console shows times in until the browser tells its own (docs/glossary.md). */
export const DEFAULT_TIME_ZONE = 'Asia/Tokyo';

/** True for an IANA zone this runtime knows. */
export function isTimeZone(zone: string): boolean {
  if (!/^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+){0,2}$/.test(zone) && zone !== 'UTC') return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Formats stored UTC times for one reader: `2026年11月22日 09:05` (ja) or ISO-like `2026-11-22 09:05` (en). */
export interface Formatter {
  lang: Lang;
  timeZone: string;
  /** Date and time; an empty string for null. */
  dateTime(iso: string | null | undefined): string;
  /** The calendar day (in the reader's zone) of a time, `YYYY-MM-DD`. */
  day(at: Date): string;
  /** A short `MM/DD` label for a day key. */
  dayLabel(day: string): string;
  number(n: number): string;
  bytes(n: number | null | undefined): string;
}

export function createFormatter(lang: Lang, timeZone = DEFAULT_TIME_ZONE): Formatter {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  });
  const pick = (at: Date) => Object.fromEntries(parts.formatToParts(at).map((p) => [p.type, p.value])) as Record<string, string>;
  const numbers = new Intl.NumberFormat(lang === 'ja' ? 'ja-JP' : 'en-US');
  return {
    lang,
    timeZone,
    dateTime(iso) {
      if (!iso) return '';
      const at = new Date(iso);
      if (Number.isNaN(at.getTime())) return iso;
      const p = pick(at);
      return lang === 'ja' ? `${p.year}年${p.month}月${p.day}日 ${p.hour}:${p.minute}` : `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
    },
    day(at) {
      const p = pick(at);
      return `${p.year}-${p.month}-${p.day}`;
    },
    dayLabel(day) {
      const [, m, d] = day.split('-');
      return `${Number(m)}/${Number(d)}`;
    },
    number: (n) => numbers.format(n),
    bytes(n) {
      if (n === null || n === undefined) return '';
      const gb = n / 1024 ** 3;
      return gb >= 1 ? `${numbers.format(Math.round(gb * 10) / 10)} GB` : `${numbers.format(Math.round(n / 1024 ** 2))} MB`;
    },
  };
}
