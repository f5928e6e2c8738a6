import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MamoriError } from '../../../shared';
import { authenticateAdmin, type Actor, type Role } from '../../admins';
import type { CollectorContext } from '../../context';
import { addDestination, listDestinations, removeDestination, validateDestination } from '../../forward/store';

const NameParams = z.object({ name: z.string().min(1).max(63) });

async function actorOf(ctx: CollectorContext, request: FastifyRequest, allowed: readonly Role[]): Promise<Actor> {
  const header = request.headers.authorization;
  const { username, role } = await authenticateAdmin(ctx.db, header?.startsWith('Bearer ') ? header.slice(7) : undefined);
  if (!allowed.includes(role)) throw new MamoriError('forbidden', `the ${role} role may not do this`);
  return { username, role, address: request.ip };
}

/**
 * The SIEM destinations over the admin API (docs/design.md#forwarding-to-a-siem), for the console
 * pages to come; not registered yet. Readers list; only `admin` adds and removes, each audited.
 */
export function forwardingRoutes(ctx: CollectorContext): FastifyPluginAsync {
  return async (app) => {
    app.get('/api/v1/admin/forwarding', async (request) => {
      await actorOf(ctx, request, ['admin', 'auditor']);
      return (await listDestinations(ctx.db)).map(({ leaseOwner, leaseUntil, ...d }) => ({ ...d, forwardedBy: leaseOwner, leaseUntil }));
    });

    app.post('/api/v1/admin/forwarding', async (request, reply) => {
      const actor = await actorOf(ctx, request, ['admin']);
      const body = request.body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new MamoriError('validation_failed', 'body: a destination object');
      const config = validateDestination(body as Record<string, unknown>);
      await addDestination(ctx.db, actor, config, ctx.clock.now());
      return reply.code(201).send({ name: config.name });
    });

    app.delete('/api/v1/admin/forwarding/:name', async (request, reply) => {
      const actor = await actorOf(ctx, request, ['admin']);
      const parsed = NameParams.safeParse(request.params);
      if (!parsed.success) throw new MamoriError('validation_failed', 'name: 1–63 characters');
      await removeDestination(ctx.db, actor, parsed.data.name);
      return reply.code(204).send();
    });
  };
}
