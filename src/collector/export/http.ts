import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { MamoriError, Segment } from '../../shared';
import { audit, type Actor } from '../admins';
import type { CollectorContext } from '../context';
import { exportFileName, type ExportLang } from './columns';
import { ledgerCsv } from './csv';
import { ledgerRows } from './ledger';

/** The ledger export's query: `format`, `segment`, `lang` (DESIGN.md, HTTP API). */
export const ExportQuery = z.object({
  format: z.enum(['csv', 'xlsx', 'json']).default('csv'),
  segment: Segment.optional(),
  lang: z.enum(['ja', 'en']).default('ja'),
});
export type ExportQuery = z.infer<typeof ExportQuery>;

/** `Content-Disposition` for a download whose name may be Japanese (RFC 6266 / 5987). */
export function attachment(reply: FastifyReply, fileName: string, contentType: string): void {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  reply.header('content-type', contentType);
  reply.header('content-disposition', `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`);
  reply.header('cache-control', 'no-store');
}

/**
 * Sends the ledger in the asked format, after recording the export in the audit log (who, what,
 * from where): the API and the console both export through here.
 */
export async function sendLedger(ctx: CollectorContext, reply: FastifyReply, actor: Actor, q: ExportQuery): Promise<FastifyReply> {
  const rows = await ledgerRows(ctx.db, q.segment);
  await audit(ctx.db, actor, 'inventory.export', q.segment ?? '*', { format: q.format, lang: q.lang, rows: rows.length });
  const lang = q.lang as ExportLang;
  if (q.format === 'json') {
    attachment(reply, exportFileName(lang, 'json'), 'application/json; charset=utf-8');
    return reply.send(JSON.stringify(rows));
  }
  if (q.format === 'xlsx') throw new MamoriError('bad_request', 'format=xlsx arrives with the streaming writer; use csv or json');
  attachment(reply, exportFileName(lang, 'csv'), 'text/csv; charset=utf-8');
  return reply.send(ledgerCsv(rows, lang));
}
