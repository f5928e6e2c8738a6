import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MamoriError, SEGMENTS } from '../../../shared';
import { audit } from '../../admins';
import type { ConsoleSession } from '../../console/auth';
import { SEEN_FILTERS, TERMINAL_STATES, searchTerminals, terminalDetail, terminalEvents, usbHistory, verifyStoredChain } from '../../console/queries';
import { TerminalPage, TerminalsPage } from '../../console/views/pages/terminals';
import type { View } from '../../console/views/view';
import { form, type ConsoleKit } from './kit';

const TERMINALS_PAGE = 50;
const EVENTS_PAGE = 100;

const TerminalQuery = z.object({
  q: z.string().trim().max(200).optional().catch(undefined),
  segment: z.enum(SEGMENTS).optional().catch(undefined),
  state: z.enum(TERMINAL_STATES).optional().catch(undefined),
  seen: z.enum(SEEN_FILTERS).optional().catch(undefined),
  sort: z.enum(['hostname', 'last_seen']).optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(100_000).catch(1),
});
const EventsQuery = z.object({ type: z.string().max(40).optional().catch(undefined), before: z.coerce.number().int().min(1).optional().catch(undefined) });
const TerminalParams = z.object({ id: z.string() });

/** The terminal list, a terminal's page, and re-verifying its stored log. */
export function terminalPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, send, actorOf } = kit;

  scope.get(
    '/terminals',
    { config: { page: 'terminals' }, schema: { querystring: TerminalQuery } },
    kit.guarded(async (request, reply, _s, v) => {
      const q = TerminalQuery.parse(request.query ?? {});
      const filter = { ...q, q: q.q || undefined, pageSize: TERMINALS_PAGE };
      const { rows, total } = await searchTerminals(ctx.db, filter, ctx.clock.now());
      return send(reply, <TerminalsPage v={v} filter={filter} rows={rows} total={total} />);
    }),
  );

  const terminalPage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    s: ConsoleSession,
    v: View,
    verified?: Parameters<typeof TerminalPage>[0]['verified'],
  ) => {
    const { id } = request.params as { id: string };
    const t = await terminalDetail(ctx.db, id.slice(0, 100), ctx.clock.now());
    if (!t) throw new MamoriError('not_found', `no terminal ${id}`);
    const q = EventsQuery.parse(request.query ?? {});
    const type = q.type && /^[a-z_.]+$/.test(q.type) ? q.type : undefined;
    const events = await terminalEvents(ctx.db, t.id, { types: type ? [type] : undefined, before: q.before, limit: EVENTS_PAGE + 1 });
    const more = events.length > EVENTS_PAGE;
    const shown = events.slice(0, EVENTS_PAGE);
    const usb = await usbHistory(ctx.db, t.id);
    // The page shows log-ons with user names: reading it is an admin read of personal data.
    await audit(ctx.db, actorOf(request, s), 'terminal.view', t.id, { hostname: t.hostname, type: type ?? null, before: q.before ?? null });
    return send(
      reply,
      <TerminalPage
        v={v}
        t={t}
        usb={usb}
        events={shown}
        eventType={type}
        before={q.before}
        nextBefore={more ? shown[shown.length - 1]!.seq : undefined}
        verified={verified}
      />,
    );
  };
  scope.get('/terminals/:id', { config: { page: 'terminals' }, schema: { params: TerminalParams, querystring: EventsQuery } }, kit.guarded(terminalPage));

  scope.post(
    '/terminals/:id/verify',
    { config: { page: 'terminals' }, schema: { params: TerminalParams, body: form({}) } },
    kit.guarded(async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const result = await verifyStoredChain(ctx.db, id.slice(0, 100));
      await audit(ctx.db, actorOf(request, s), 'terminal.verify', id, { count: result.count, broken: result.broken });
      if (result.broken) {
        // A stored history that no longer verifies is flagged like one refused at ingest.
        await ctx.db.updateTable('agents').set({ chain_broken_seq: result.broken.seq }).where('id', '=', id).where('chain_broken_seq', 'is', null).execute();
      }
      return terminalPage(request, reply, s, { ...v, path: `/terminals/${encodeURIComponent(id)}` }, result);
    }),
  );
}
