import type { Writable } from 'node:stream';
import { LEDGER_COLUMNS, headers, type ExportLang, type LedgerRow } from './columns';
import { endStream, writeChunk } from './stream';

/**
 * Neutralises a cell a spreadsheet would run as a formula: text starting with = + - @, a tab or a
 * CR gets a leading apostrophe (OWASP "CSV injection").
 */
export function neutralise(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

// What XML 1.0 forbids (C0 controls other than tab, LF and CR; U+FFFE and U+FFFF; surrogates
// without their pair). exceljs drops most C0 controls itself but writes U+FFFE and U+FFFF as they
// are, and one of them makes Excel refuse the whole workbook. Matched on UTF-16 code units, hence
// no `u` flag.
const XML_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * An untrusted string as a spreadsheet cell shows it, in CSV and XLSX alike: characters XML 1.0
 * forbids removed (a terminal's escape sequences and NULs from a USB descriptor mean nothing to an
 * auditor), then {@link neutralise}d. Stripping comes first so `\u0001=1+1` cannot slip a formula
 * past the check.
 */
export function spreadsheetText(text: string): string {
  return neutralise(text.replace(XML_FORBIDDEN, ''));
}

/**
 * One CSV field: a number as is (nothing when not finite), text through {@link spreadsheetText}
 * and quoted per RFC 4180 when it holds a quote, a comma or a line break; null as nothing.
 * Throws nothing.
 */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  const text = spreadsheetText(String(value));
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvHeader(lang: ExportLang): string {
  return `\ufeff${headers(lang).map(csvField).join(',')}\r\n`;
}

function csvLines(rows: readonly LedgerRow[]): string {
  let out = '';
  for (const row of rows) out += `${LEDGER_COLUMNS.map((c) => csvField(row[c.key])).join(',')}\r\n`;
  return out;
}

/**
 * The ledger as CSV that Excel opens as is: UTF-8 with a BOM, CRLF, RFC 4180 quoting. For a few
 * rows; a fleet goes through {@link writeLedgerCsv}. Throws nothing.
 */
export function ledgerCsv(rows: LedgerRow[], lang: ExportLang): string {
  return csvHeader(lang) + csvLines(rows);
}

/**
 * Streams the ledger to `out` as CSV, byte for byte what {@link ledgerCsv} makes of the same rows,
 * one chunk per batch, waiting whenever `out` asks to drain; then ends `out` and waits for it to
 * flush. Nothing is written before the first batch arrives, so a failing first query leaves `out`
 * untouched for an error response.
 * @returns the number of terminals written.
 * @throws whatever `batches` throws, and MamoriError `unavailable` when `out` closes early (a client
 *   that hung up). Once anything was written, `out` is destroyed first, so a cut-off file never
 *   ends cleanly and passes for the whole ledger.
 */
export async function writeLedgerCsv(batches: AsyncIterable<LedgerRow[]>, lang: ExportLang, out: Writable): Promise<number> {
  let count = 0;
  let started = false;
  try {
    for await (const batch of batches) {
      const body = csvLines(batch);
      await writeChunk(out, started ? body : csvHeader(lang) + body);
      started = true;
      count += batch.length;
    }
    if (!started) await writeChunk(out, csvHeader(lang));
    started = true;
    await endStream(out);
    return count;
  } catch (error) {
    if (started) out.destroy();
    throw error;
  }
}
