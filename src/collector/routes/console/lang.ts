import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AnyQuery, safeNext, type ConsoleKit } from './kit';

/** The language switch: a cookie, then back to the page it was clicked on. */
export function langPages(scope: FastifyInstance, kit: ConsoleKit): void {
  scope.get('/lang/:lang', { config: { public: true }, schema: { params: z.object({ lang: z.string() }), querystring: AnyQuery } }, async (request, reply) => {
    const lang = (request.params as { lang: string }).lang === 'en' ? 'en' : 'ja';
    reply.setCookie(kit.names.lang, lang, { path: '/', sameSite: 'lax', secure: kit.opts.secure, maxAge: 365 * 86_400 });
    return kit.redirect(reply, safeNext((request.query as Record<string, unknown>).next));
  });
}
