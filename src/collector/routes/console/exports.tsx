import type { FastifyInstance } from 'fastify';
import { searchAudit } from '../../console/queries';
import { ExportsPage } from '../../console/views/pages/exports';
import { ExportQuery, sendLedger } from '../../export/http';
import { AnyQuery, type ConsoleKit } from './kit';

/** The ledger export: the page with the recent exports, and the download itself. */
export function exportPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, send, actorOf } = kit;
  scope.get(
    '/exports',
    { config: { page: 'exports' }, schema: { querystring: AnyQuery } },
    kit.guarded(async (_request, reply, _s, v) => {
      const { rows } = await searchAudit(ctx.db, { action: 'inventory.export', page: 1, pageSize: 10 });
      return send(reply, <ExportsPage v={v} recent={rows} />);
    }),
  );
  // `ExportQuery` is parsed by the handler: the form sends an empty segment for "all segments".
  scope.get(
    '/exports/download',
    { config: { page: 'exports' }, schema: { querystring: AnyQuery } },
    kit.guarded(async (request, reply, s) => {
      const q = ExportQuery.parse(Object.fromEntries(Object.entries((request.query ?? {}) as Record<string, unknown>).filter(([, value]) => value !== '')));
      return sendLedger(ctx, reply, actorOf(request, s), q);
    }),
  );
}
