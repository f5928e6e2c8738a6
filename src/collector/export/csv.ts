import { LEDGER_COLUMNS, headers, type ExportLang, type LedgerRow } from './columns';

/**
 * Neutralises a cell a spreadsheet would run as a formula: text starting with = + - @, a tab or a
 * CR gets a leading apostrophe (OWASP "CSV injection").
 */
export function neutralise(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

function cell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = neutralise(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The ledger as CSV that Excel opens as is: UTF-8 with a BOM, CRLF, RFC 4180 quoting. */
export function ledgerCsv(rows: LedgerRow[], lang: ExportLang): string {
  const lines = [headers(lang).map(cell).join(',')];
  for (const row of rows) lines.push(LEDGER_COLUMNS.map((c) => cell(row[c.key])).join(','));
  return `\ufeff${lines.join('\r\n')}\r\n`;
}
