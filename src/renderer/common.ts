import { bridgeErrorCode, type MamoriBridge } from '../shared/bridge.js';
import { MESSAGES, type Lang, type MessageKey } from './messages.js';

declare global {
  interface Window {
    mamori: MamoriBridge;
  }
}

let lang: Lang = 'ja';

// A form is never submitted natively (the CSP forbids it and the page would hang): each page
// handles its own submit, and one made before the page is ready does nothing.
document.addEventListener('submit', (event) => event.preventDefault(), true);

/** A message in the UI language. */
export function t(key: MessageKey): string {
  return MESSAGES[lang][key] ?? MESSAGES.ja[key];
}

/** Sets the language from main and fills every `data-i18n` element. Text only: never HTML. */
export async function initPage(): Promise<Lang> {
  try {
    lang = await window.mamori.locale();
  } catch {
    lang = 'ja';
  }
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll<HTMLElement>('[data-i18n]')) el.textContent = t(el.dataset.i18n as MessageKey);
  document.title = `${t((document.body.dataset.title ?? 'app.name') as MessageKey)} — ${t('app.name')}`;
  return lang;
}

/** Creates an element with text content (untrusted strings never become markup). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** Dates as municipal staff read them: 2026年11月22日 09:05, or ISO-like in English. */
export function formatDate(iso: string | null): string {
  if (!iso) return t('status.never');
  const d = new Date(iso);
  if (lang === 'en') return d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日 ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Shows an error from the agent in the page's alert area. */
export function showError(area: HTMLElement, err: unknown): void {
  const code = bridgeErrorCode(err);
  const message = ((err as Error).message ?? '').replace(/^[a-z_]+: /, '');
  area.textContent =
    code === 'rate_limited'
      ? t('error.rateLimited')
      : code === 'unlock_refused'
        ? `${t('exception.refused')} (${message})`
        : `${t('error.generic')}: ${message}`;
  area.hidden = false;
}
