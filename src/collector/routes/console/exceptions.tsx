import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MAX_UNLOCK_MINUTES, MamoriError } from '../../../shared';
import { audit } from '../../admins';
import type { ConsoleSession } from '../../console/auth';
import { ExceptionsPage, durationLabel } from '../../console/views/pages/exceptions';
import type { Flash, View } from '../../console/views/view';
import { decideException, listExceptions, unlockCode } from '../../exceptions';
import { AnyQuery, FormField, form, str, type ConsoleKit } from './kit';

/** Decided requests shown under the pending ones, newest first. */
const DECIDED_SHOWN = 200;
const Minutes = z.object({ minutes: z.coerce.number().int().min(1).max(MAX_UNLOCK_MINUTES) });
const RequestParams = z.object({ id: z.string() });

/** Exception requests: pending and decided, approve, deny, and the unlock-code tool for calls by phone. */
export function exceptionPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, send, actorOf, flashNext, redirect } = kit;

  const exceptionsPage = async (request: FastifyRequest, reply: FastifyReply, s: ConsoleSession, v: View, status = 200) => {
    const pending = await listExceptions(ctx.db, { status: 'pending' });
    const decided = await listExceptions(ctx.db, { decided: true, limit: DECIDED_SHOWN });
    await audit(ctx.db, actorOf(request, s), 'exceptions.read', '*', { count: pending.length + decided.length });
    return send(reply, <ExceptionsPage v={v} pending={pending} decided={decided} />, status);
  };
  scope.get('/exceptions', { config: { page: 'exceptions' }, schema: { querystring: AnyQuery } }, kit.guarded(exceptionsPage));

  scope.post(
    '/exceptions/:id/approve',
    { config: { page: 'exceptions' }, schema: { params: RequestParams, body: form({ minutes: FormField }) } },
    kit.guarded(async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const { minutes } = Minutes.parse(request.body);
      const { expiresAt } = await decideException(ctx.db, actorOf(request, s), id.slice(0, 100), { approve: minutes }, ctx.clock);
      flashNext(reply, 'ok', 'exceptions.approved', { id, until: v.fmt.dateTime(expiresAt) });
      return redirect(reply, '/exceptions');
    }),
  );

  scope.post(
    '/exceptions/:id/deny',
    { config: { page: 'exceptions' }, schema: { params: RequestParams, body: form({}) } },
    kit.guarded(async (request, reply, s) => {
      const { id } = request.params as { id: string };
      await decideException(ctx.db, actorOf(request, s), id.slice(0, 100), 'deny', ctx.clock);
      flashNext(reply, 'ok', 'exceptions.denied', { id });
      return redirect(reply, '/exceptions');
    }),
  );

  scope.post(
    '/exceptions/unlock',
    { config: { page: 'exceptions' }, schema: { body: form({ requestCode: FormField, minutes: FormField, device: FormField }) } },
    kit.guarded(async (request, reply, s, v) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const requestCode = str(body.requestCode).trim().slice(0, 40);
      // A minute count that is not 1–10080 is refused, never replaced by a default the admin did not choose.
      const parsed = Minutes.safeParse(body);
      if (!parsed.success)
        return exceptionsPage(
          request,
          reply,
          s,
          { ...v, flash: { kind: 'error', text: v.t('exceptions.unlock.badMinutes', { max: MAX_UNLOCK_MINUTES }) }, path: '/exceptions' },
          400,
        );
      const { minutes } = parsed.data;
      try {
        const device = str(body.device).trim().slice(0, 300);
        const answer = await unlockCode(ctx.db, requestCode, minutes, device || undefined, { actor: actorOf(request, s), clock: ctx.clock });
        // The code is shown in this response only, never carried in a cookie or a URL.
        const flash: Flash = {
          kind: 'ok',
          text: `${v.t('exceptions.unlock.result', { host: answer.hostname, minutes: durationLabel(v, minutes), device: answer.scopeText })} ${v.t('exceptions.unlock.readAloud')}`,
          secret: answer.code,
        };
        return exceptionsPage(request, reply, s, { ...v, flash, path: '/exceptions' });
      } catch (err) {
        if (!(err instanceof MamoriError)) throw err;
        return exceptionsPage(request, reply, s, { ...v, flash: { kind: 'error', text: err.message }, path: '/exceptions' }, 400);
      }
    }),
  );
}
