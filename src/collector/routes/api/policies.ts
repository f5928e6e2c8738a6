import { MamoriError, type Segment } from '../../../shared';
import type { CollectorContext } from '../../context';
import { applyPolicyChange, policyForAgent, policyHistory } from '../../policies';
import type { RouteHandlers } from './route';

/** The agent's signed policy, and an admin's view and change of a segment's. */
export const policyRoutes = (ctx: CollectorContext): RouteHandlers<'getPolicy' | 'getSegmentPolicy' | 'putSegmentPolicy'> => ({
  getPolicy: async ({ agent }) => policyForAgent(ctx.db, ctx.key, agent.segment as Segment, ctx.clock),
  getSegmentPolicy: async ({ params }) => {
    const history = await policyHistory(ctx.db, params.segment);
    return {
      ...history[0]!.policy,
      history: history.map((h) => ({ version: h.policy.version, issuedAt: h.policy.issuedAt, by: h.createdBy, mode: h.policy.removableMedia.mode })),
    };
  },
  putSegmentPolicy: async ({ actor, params, body }) => {
    if (body.segment !== params.segment) throw new MamoriError('bad_request', `the document is for segment ${body.segment}, the path says ${params.segment}`);
    return (await applyPolicyChange(ctx.db, ctx.key, body, actor, ctx.clock)).after;
  },
});

/** A policy document without `segment` is for the segment of its path (`prepare` of the PUT). */
export function segmentFromPath(request: { body: unknown; params: unknown }): void {
  const body = (request.body ?? {}) as Record<string, unknown>;
  request.body = { ...body, segment: body.segment ?? (request.params as { segment?: unknown }).segment };
}
