import type { FastifyInstance } from 'fastify';
import { HTTP_ROUTES, type HttpRouteName } from '../../../shared';
import type { CollectorContext } from '../../context';
import { auditRoutes } from './audit';
import { enrollRoutes } from './enroll';
import { eventRoutes } from './events';
import { exceptionRoutes } from './exceptions';
import { incidentRoutes } from './incidents';
import { inventoryRoutes } from './inventory';
import { metaRoutes } from './meta';
import { metricsRoutes } from './metrics';
import { policyRoutes, segmentFromPath } from './policies';
import { registerRoute, serializerCompiler, validatorCompiler, type RouteHandlers, type RouteOptions } from './route';
import { syncRoutes } from './sync';
import { terminalRoutes } from './terminals';

/** Routes that need more than the table says. */
const OPTIONS: Partial<Record<HttpRouteName, RouteOptions>> = {
  // A refused batch still flags the terminal: the handler sees the refusal.
  postEvents: { attachValidation: true },
  putSegmentPolicy: { prepare: segmentFromPath },
};

/**
 * Registers every route of `HTTP_ROUTES` (docs/design.md#http-api) in its own scope, validated
 * and serialized by the table's zod schemas. Each resource's handlers live in their own file.
 */
export async function registerApi(app: FastifyInstance, ctx: CollectorContext): Promise<void> {
  await app.register(async (api) => {
    api.setValidatorCompiler(validatorCompiler);
    api.setSerializerCompiler(serializerCompiler);
    const handlers: RouteHandlers = {
      ...metaRoutes(),
      ...enrollRoutes(ctx),
      ...syncRoutes(ctx),
      ...inventoryRoutes(ctx),
      ...policyRoutes(ctx),
      ...exceptionRoutes(ctx),
      ...incidentRoutes(ctx),
      ...terminalRoutes(ctx),
      ...eventRoutes(ctx),
      ...auditRoutes(ctx),
      ...metricsRoutes(ctx),
    };
    for (const name of Object.keys(HTTP_ROUTES) as HttpRouteName[]) {
      registerRoute(api, ctx, name, handlers[name] as never, OPTIONS[name]);
    }
  });
}
