import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { Segment } from '../../shared';
import { audit, type Actor } from '../admins';
import type { CollectorContext } from '../context';
import { exportFileName, type ExportLang, type LedgerRow } from './columns';
import { writeLedgerCsv } from './csv';
import { writeLedgerJson } from './json';
import { ledgerRowBatches } from './ledger';
import { writeLedgerXlsx } from './xlsx';

/** The ledger export's query: `format`, `segment`, `lang` (docs/design.md#ledger-export). */
export const ExportQuery = z.object({
  format: z.enum(['csv', 'xlsx', 'json']).default('csv'),
  segment: Segment.optional(),
  lang: z.enum(['ja', 'en']).default('ja'),
});
export type ExportQuery = z.infer<typeof ExportQuery>;

const CONTENT_TYPES = {
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  json: 'application/json; charset=utf-8',
} as const;

/** `Content-Disposition` for a download whose name may be Japanese (RFC 6266 / 5987). */
export function attachment(reply: FastifyReply, fileName: string, contentType: string): void {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  reply.header('content-type', contentType);
  reply.header('content-disposition', `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`);
  reply.header('cache-control', 'no-store');
}

/** The batches again, with the first one (already read) in front. */
async function* withFirst(first: IteratorResult<LedgerRow[]>, rest: AsyncIterator<LedgerRow[]>): AsyncGenerator<LedgerRow[]> {
  if (first.done) return;
  yield first.value;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

/**
 * Streams the ledger in the asked format, a page of terminals at a time, after recording the export
 * in the audit log (who, what, from where): the API and the console both export through here. The
 * first page is read before anything is sent, so a database that fails answers with an error
 * rather than half a file.
 */
export async function sendLedger(ctx: CollectorContext, reply: FastifyReply, actor: Actor, q: ExportQuery): Promise<FastifyReply> {
  const lang = q.lang as ExportLang;
  const at = ctx.clock.now();
  const batches = ledgerRowBatches(ctx.db, q.segment, at)[Symbol.asyncIterator]();
  const first = await batches.next();
  let count = ctx.db.selectFrom('agents').select((eb) => eb.fn.countAll<number>().as('n'));
  if (q.segment) count = count.where('segment', '=', q.segment);
  const { n } = await count.executeTakeFirstOrThrow();
  await audit(ctx.db, actor, 'inventory.export', q.segment ?? '*', { format: q.format, lang: q.lang, rows: Number(n) });
  const body = new PassThrough();
  const rows = withFirst(first, batches);
  const written =
    q.format === 'xlsx' ? writeLedgerXlsx(rows, lang, body, at) : q.format === 'csv' ? writeLedgerCsv(rows, lang, body) : writeLedgerJson(rows, body);
  written.catch((err: unknown) => {
    // The status line is gone by now: cut the connection so the client sees an incomplete file.
    reply.log.warn({ err }, 'ledger export cut short');
    body.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  attachment(reply, exportFileName(lang, q.format, at), CONTENT_TYPES[q.format]);
  return reply.send(body);
}
