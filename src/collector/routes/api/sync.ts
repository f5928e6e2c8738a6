import { MamoriError } from '../../../shared';
import { flagRefusedBatch, ingestEvents } from '../../agents';
import type { CollectorContext } from '../../context';
import type { RouteHandlers } from './route';

const safeSeq = (seq: unknown) => (typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : undefined);

/** The seq of the first event of a body, when it has one, for the flag of a refused batch. */
function firstSeq(body: unknown): number | undefined {
  const events = (body as { events?: unknown } | null)?.events;
  return Array.isArray(events) ? safeSeq((events[0] as { seq?: unknown } | null)?.seq) : undefined;
}

/** The seq named by a refusal's path (`body.events.3.…`), when the body has that event. */
function refusedSeq(err: MamoriError, body: unknown): number | undefined {
  const match = /^body\.events\.(\d+)/.exec(err.message);
  const events = (body as { events?: unknown } | null)?.events;
  if (!match || !Array.isArray(events)) return undefined;
  return safeSeq((events[Number(match[1])] as { seq?: unknown } | null)?.seq);
}

/** `POST /api/v1/agents/{agentId}/events` (docs/design.md#sync-protocol). */
export const syncRoutes = (ctx: CollectorContext): RouteHandlers<'postEvents'> => ({
  postEvents: async ({ params, body, request }) => {
    const refusal = request.validationError;
    if (refusal) {
      // An authenticated terminal's batch that can never be accepted silences it: flag it.
      if (refusal instanceof MamoriError)
        await flagRefusedBatch(
          ctx.db,
          params.agentId,
          new MamoriError(refusal.code, refusal.message, { seq: refusedSeq(refusal, request.body) }),
          firstSeq(request.body),
        );
      throw refusal;
    }
    return { ackSeq: await ingestEvents(ctx.db, ctx.engine, params.agentId, body.events, ctx.clock) };
  },
});
