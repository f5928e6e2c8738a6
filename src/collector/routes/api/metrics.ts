import type { CollectorContext } from '../../context';
import { metricsFor } from '../../metrics/metrics';
import type { RouteHandlers } from './route';

/** `GET /metrics` for Prometheus, with an admin or auditor API token (docs/design.md#metrics). */
export const metricsRoutes = (ctx: CollectorContext): RouteHandlers<'metrics'> => ({
  metrics: async ({ reply }) => {
    const m = metricsFor(ctx);
    const text = await m.scrape();
    return reply.type(m.registry.contentType).header('cache-control', 'no-store').send(text);
  },
});
