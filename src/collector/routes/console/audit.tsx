import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { audit } from '../../admins';
import type { MessageKey } from '../../console/messages';
import { auditRowsFor, searchAudit } from '../../console/queries';
import { AuditPage, detailText } from '../../console/views/pages/audit';
import type { View } from '../../console/views/view';
import { csvField } from '../../export/csv';
import { attachment } from '../../export/http';
import { endStream, writeChunk } from '../../export/stream';
import type { ConsoleKit } from './kit';

const AUDIT_PAGE = 100;

const AuditQuery = z.object({
  actor: z.string().trim().max(100).optional().catch(undefined),
  action: z.string().trim().max(60).optional().catch(undefined),
  from: z.iso.date().optional().catch(undefined),
  to: z.iso.date().optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(100_000).catch(1),
});

/** The audit log: the filtered page and its CSV export. */
export function auditPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, send, actorOf } = kit;
  /** Dates typed in the reader's zone become UTC bounds; `to` includes its whole day. */
  const auditFilter = (request: FastifyRequest) => {
    const q = AuditQuery.parse(request.query ?? {});
    const zone = kit.zoneOf(request);
    const startOf = (day: string) => zonedMidnight(day, zone);
    return {
      q,
      filter: {
        actor: q.actor || undefined,
        action: q.action || undefined,
        from: q.from ? startOf(q.from) : undefined,
        to: q.to ? startOf(nextDay(q.to)) : undefined,
        page: q.page,
        pageSize: AUDIT_PAGE,
      },
    };
  };
  scope.get(
    '/audit',
    { config: { page: 'audit' }, schema: { querystring: AuditQuery } },
    kit.guarded(async (request, reply, _s, v) => {
      const { q, filter } = auditFilter(request);
      const { rows, total, actions } = await searchAudit(ctx.db, filter);
      return send(
        reply,
        <AuditPage v={v} rows={rows} total={total} actions={actions} filter={filter} query={{ actor: q.actor, action: q.action, from: q.from, to: q.to }} />,
      );
    }),
  );
  scope.get(
    '/audit/export.csv',
    { config: { page: 'audit' }, schema: { querystring: AuditQuery } },
    kit.guarded(async (request, reply, s, v) => {
      const { filter } = auditFilter(request);
      await audit(ctx.db, actorOf(request, s), 'audit.export', '*', {
        actor: filter.actor ?? null,
        action: filter.action ?? null,
        from: filter.from ?? null,
        to: filter.to ?? null,
      });
      attachment(reply, `${v.lang === 'ja' ? '操作履歴' : 'audit-log'}_${v.fmt.day(ctx.clock.now()).replace(/-/g, '')}.csv`, 'text/csv; charset=utf-8');
      return reply.send(auditCsv(kit, request, v, filter));
    }),
  );
}

/** The audit log as CSV, streamed like the ledger: a year of audit entries need not sit in memory. */
function auditCsv(kit: ConsoleKit, request: FastifyRequest, v: View, filter: Parameters<typeof auditRowsFor>[1]): PassThrough {
  const headers: MessageKey[] = ['auditlog.at', 'auditlog.actor', 'auditlog.role', 'auditlog.action', 'auditlog.target', 'auditlog.detail', 'auditlog.address'];
  const body = new PassThrough();
  const write = async () => {
    await writeChunk(body, `\ufeff${headers.map((h) => csvField(v.t(h))).join(',')}\r\n`);
    for await (const batch of auditRowsFor(kit.ctx.db, filter)) {
      await writeChunk(
        body,
        batch
          .map((r) => `${[v.fmt.dateTime(r.at), r.actor, r.role, r.action, r.target, detailText(r.detail), r.address].map(csvField).join(',')}\r\n`)
          .join(''),
      );
    }
    await endStream(body);
  };
  write().catch((err: unknown) => {
    request.log.warn({ err }, 'audit log export cut short');
    body.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return body;
}

function nextDay(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** The UTC instant of midnight at the start of `day` in `zone`. */
export function zonedMidnight(day: string, zone: string): string {
  const guess = new Date(`${day}T00:00:00Z`);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(guess)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return new Date(guess.getTime() - (asUtc - guess.getTime())).toISOString();
}
