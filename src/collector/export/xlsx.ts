import type { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import { systemClock } from '../../shared';
import { LEDGER_COLUMNS, headers, type ExportLang, type LedgerRow } from './columns';
import { spreadsheetText } from './csv';
import { assertOpen, drained, finishedOrClosed } from './stream';

type Column = (typeof LEDGER_COLUMNS)[number];
/** The only values a ledger cell is given: never an object exceljs would read as a formula or link. */
type CellValue = string | number | Date | null;

const SHEET_NAME: Record<ExportLang, string> = { ja: '端末台帳', en: 'Ledger' };

// Excel has no time zones: a date cell is a wall-clock reading. The ledger is read in Japan, so the
// cell holds Japan's wall clock (Asia/Tokyo: UTC+9, and no daylight saving since 1951, so a fixed
// offset is exact). exceljs turns a Date into a serial from its UTC fields, hence the shift.
const JST_OFFSET_MS = 9 * 3600 * 1000;
const DATE_FORMAT = 'yyyy/mm/dd hh:mm';

// One shared object per style, every cell included: exceljs caches a style's id by object
// identity, and otherwise gives each cell a fresh (empty) style object that it serialises to find
// the id again: a quarter of the XLSX export's time and much of its garbage.
const HEADER_STYLE: Partial<ExcelJS.Style> = { font: { bold: true } };
const DATE_STYLE: Partial<ExcelJS.Style> = { numFmt: DATE_FORMAT };
const PLAIN_STYLE: Partial<ExcelJS.Style> = {};

/**
 * Excel's limit on the characters in a cell. A longer string makes Excel report the workbook as
 * damaged, and one terminal listing a thousand USB devices with 1 KB descriptors would reach it.
 */
export const XLSX_CELL_MAX = 32_767;

const MIN_WIDTH = 6;
const MAX_WIDTH = 60;
/** Room for the autofilter's drop-down button beside a header. */
const FILTER_BUTTON = 3;

/**
 * How much sheet XML exceljs may hold before the export waits. exceljs's streaming writer ignores
 * backpressure (https://github.com/exceljs/exceljs/issues/734): each committed row is pushed into
 * the zip pipeline whatever the destination's pace, so behind a slow download it would buffer the
 * whole sheet. We watch the stream it pipes the sheet into and wait for it to drain past this.
 * About three pages of rows: measured on 10,000 terminals, 1 MB (a wait after every page) took a
 * third longer, and no limit used more memory and was no faster.
 */
const SHEET_BACKLOG_BYTES = 4 * 1024 * 1024;

function isWide(codePoint: number): boolean {
  return (
    (codePoint >= 0x1100 && codePoint <= 0x115f) ||
    (codePoint >= 0x2e80 && codePoint <= 0xa4cf) ||
    (codePoint >= 0xac00 && codePoint <= 0xd7a3) ||
    (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0xfe30 && codePoint <= 0xfe4f) ||
    (codePoint >= 0xff00 && codePoint <= 0xff60) ||
    (codePoint >= 0xffe0 && codePoint <= 0xffe6) ||
    (codePoint >= 0x1f300 && codePoint <= 0x1faff) ||
    (codePoint >= 0x20000 && codePoint <= 0x3fffd)
  );
}

/**
 * The width of text in Excel's column units (about one Latin digit each): full-width characters
 * (kanji, kana, full-width forms) count double; a multi-line cell is as wide as its longest line.
 */
export function displayWidth(text: string): number {
  let widest = 0;
  for (const line of text.split(/\r\n|\r|\n/)) {
    let width = 0;
    for (const ch of line) width += isWide(ch.codePointAt(0) ?? 0) ? 2 : 1;
    widest = Math.max(widest, width);
  }
  return widest;
}

/** A ledger value as the cell exceljs writes: a Date, a number, a plain string or nothing. */
function cellValue(column: Column, value: string | number | null): CellValue {
  if (value === null) return null;
  if (column.type === 'number' && typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (column.type === 'date' && typeof value === 'string') {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return new Date(ms + JST_OFFSET_MS);
  }
  // Everything else, including a number that turns up in a text column, is text. Line breaks
  // become LF, Excel's own in-cell break: an XML reader turns a raw CR into LF anyway, so writing
  // it so keeps what we write and what Excel shows the same.
  return fitCell(spreadsheetText(String(value)).replace(/\r\n?/g, '\n'));
}

/** Text cut to {@link XLSX_CELL_MAX} with a closing ellipsis, never between a surrogate pair. */
function fitCell(text: string): string {
  if (text.length <= XLSX_CELL_MAX) return text;
  let end = XLSX_CELL_MAX - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

function shownWidth(value: CellValue): number {
  if (value === null) return 0;
  if (value instanceof Date) return DATE_FORMAT.length;
  return displayWidth(typeof value === 'number' ? String(value) : value);
}

/**
 * Column widths from the headers and the first batch: the sheet's `<cols>` precede its rows in the
 * file, so a streamed sheet must settle them before the first row goes out.
 */
function columnWidths(lang: ExportLang, sample: readonly CellValue[][]): number[] {
  return headers(lang).map((header, i) => {
    let width = displayWidth(header) + FILTER_BUTTON;
    for (const values of sample) width = Math.max(width, shownWidth(values[i] ?? null));
    return Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, width + 1));
  });
}

function rowValues(row: LedgerRow): CellValue[] {
  return LEDGER_COLUMNS.map((c) => cellValue(c, row[c.key]));
}

/**
 * How many bytes wait in the stream exceljs pipes the sheet into, or undefined before the zip has
 * reached the sheet (see SHEET_BACKLOG_BYTES).
 */
function sheetBacklog(sheet: ExcelJS.Worksheet): { bytes: number; stream: EventEmitter } | undefined {
  // Internal to exceljs 4: the sheet's StreamBuf and the readable-stream 3 PassThrough it pipes
  // into, which has `_writableState` but not Node's `writableLength`. Checked shape by shape, so
  // that a release which changes them costs this throttle, not the export.
  const pipes = (sheet as unknown as { _stream?: { pipes?: unknown } })._stream?.pipes;
  const sink: unknown = Array.isArray(pipes) ? pipes[0] : undefined;
  if (typeof sink !== 'object' || sink === null) return undefined;
  const stream = sink as Partial<EventEmitter> & { writableLength?: unknown; _writableState?: { length?: unknown } };
  const bytes = typeof stream.writableLength === 'number' ? stream.writableLength : stream._writableState?.length;
  if (typeof bytes !== 'number' || typeof stream.once !== 'function' || typeof stream.off !== 'function') return undefined;
  return { bytes, stream: stream as EventEmitter };
}

async function throttle(sheet: ExcelJS.Worksheet, out: Writable): Promise<void> {
  // A destination that went away between two waits is noticed here, not after the last row.
  assertOpen(out);
  for (;;) {
    if (out.writableNeedDrain) {
      await drained(out, out);
      continue;
    }
    const backlog = sheetBacklog(sheet);
    if (backlog && backlog.bytes > SHEET_BACKLOG_BYTES) {
      await drained(backlog.stream, out);
      continue;
    }
    return;
  }
}

/** Starts the workbook on `out`: properties, the sheet with its frozen view, widths and header row. */
function openWorkbook(
  out: Writable,
  lang: ExportLang,
  at: Date,
  sample: CellValue[][],
): { workbook: ExcelJS.stream.xlsx.WorkbookWriter; sheet: ExcelJS.Worksheet } {
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useStyles: true, useSharedStrings: false });
  workbook.creator = 'Mamori';
  workbook.lastModifiedBy = 'Mamori';
  workbook.created = at;
  workbook.modified = at;
  // Views are written with the sheet's opening tag, so they go in at creation.
  const sheet = workbook.addWorksheet(SHEET_NAME[lang], { views: [{ state: 'frozen', xSplit: 0, ySplit: 1, topLeftCell: 'A2', activeCell: 'A2' }] });
  const widths = columnWidths(lang, sample);
  sheet.columns = widths.map((width) => ({ width }));
  const header = sheet.addRow(headers(lang));
  header.eachCell((cell) => {
    cell.style = HEADER_STYLE;
  });
  header.commit();
  return { workbook, sheet };
}

function writeRows(sheet: ExcelJS.Worksheet, rows: readonly CellValue[][]): void {
  for (const values of rows) {
    const row = sheet.addRow(values);
    for (let i = 0; i < values.length; i++) row.getCell(i + 1).style = values[i] instanceof Date ? DATE_STYLE : PLAIN_STYLE;
    // Committed at once: the streaming writer keeps every uncommitted row in memory.
    row.commit();
  }
}

/**
 * Streams the ledger to `out` as an Excel workbook, committing each row as it is written so memory
 * stays flat whatever the fleet's size: one sheet (端末台帳 / Ledger) whose header row (from
 * LEDGER_COLUMNS, in `lang`) is bold, frozen and carries an autofilter; dates as date cells showing
 * Japan's wall clock, numbers as numbers, and everything else as plain text, treated like CSV
 * ({@link spreadsheetText}): never a formula, a link or rich text; text beyond Excel's
 * {@link XLSX_CELL_MAX} characters is cut with an ellipsis. Ends `out` and resolves once it
 * has flushed. Nothing is written before the first batch arrives, so a failing first query leaves
 * `out` untouched for an error response.
 * @param at the workbook's creation time (its properties), now by default.
 * @returns the number of terminals written.
 * @throws whatever `batches` throws, and MamoriError `unavailable` when `out` closes early (a client
 *   that hung up); in both cases, once anything was written, `out` is destroyed so that a cut-off
 *   workbook is never delivered as if whole.
 */
export async function writeLedgerXlsx(batches: AsyncIterable<LedgerRow[]>, lang: ExportLang, out: Writable, at: Date = systemClock.now()): Promise<number> {
  let open: { workbook: ExcelJS.stream.xlsx.WorkbookWriter; sheet: ExcelJS.Worksheet } | undefined;
  let count = 0;

  try {
    for await (const batch of batches) {
      const rows = batch.map(rowValues);
      open ??= openWorkbook(out, lang, at, rows);
      writeRows(open.sheet, rows);
      count += rows.length;
      await throttle(open.sheet, out);
    }
    const { workbook, sheet } = (open ??= openWorkbook(out, lang, at, []));
    // Over the header and every row, now that the count is known: Excel then filters the whole
    // ledger, not just the rows next to the header.
    sheet.autoFilter = { from: { row: 1, column: 1 }, to: { row: count + 1, column: LEDGER_COLUMNS.length } };
    sheet.commit();
    // exceljs waits for `finish` alone; a client that hangs up now would leave it waiting forever.
    await Promise.race([workbook.commit(), finishedOrClosed(out)]);
    return count;
  } catch (error) {
    if (open) out.destroy();
    throw error;
  }
}
