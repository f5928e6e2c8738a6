import fp from 'fastify-plugin';
import { MamoriError } from '../../shared';

/**
 * Refuses a NUL in the path or query before any handler sees it (400 `bad_request`): PostgreSQL's
 * text cannot hold one, and no id, name or search of ours contains it.
 */
export const nulCheck = fp(
  async (app) => {
    app.addHook('onRequest', async (request) => {
      if (/%00/i.test(request.url)) throw new MamoriError('bad_request', 'the address contains a NUL character');
    });
  },
  { name: 'mamori-nul-check' },
);

/**
 * True when a parsed form has a field holding NUL: such a form is refused whole, since no name,
 * password or policy field needs it.
 */
export function formHasNul(body: unknown): boolean {
  if (!body || typeof body !== 'object') return false;
  return Object.values(body as Record<string, unknown>).some((value) =>
    (Array.isArray(value) ? value : [value]).some((x) => typeof x === 'string' && x.includes('\u0000')),
  );
}
