import { enroll } from '../../agents';
import type { CollectorContext } from '../../context';
import type { RouteHandlers } from './route';

/** `POST /api/v1/enroll`: a terminal trades an enrollment token for its id, token and policy. */
export const enrollRoutes = (ctx: CollectorContext): RouteHandlers<'enroll'> => ({
  enroll: async ({ body, request }) => enroll(ctx.db, ctx.key, body, ctx.clock, request.ip),
});
