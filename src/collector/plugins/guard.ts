import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MamoriError } from '../../shared';
import { csrfMatches, resolveSession, type ConsoleSession } from '../console/auth';
import { mayOpen, type PageName, type View } from '../console/views/view';
import type { ConsoleKit } from '../routes/console/kit';
import { CONSOLE_ROUTES } from '../routes/console/table';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The console page whose roles (`PAGE_ROLES`) may use this route. */
    page?: PageName;
    /** A console route open without a session (login, logout, language). */
    public?: boolean;
  }
  interface FastifyRequest {
    /** The signed-in console user, set by the guard before validation. */
    consoleSession: ConsoleSession | null;
    /** The page's view for that user, set by the guard. */
    consoleView: View | null;
  }
}

/**
 * The console's session, role and CSRF guard, as one `onRoute` hook: every route registered after
 * it declares `config.page` (the page whose roles may use it, as listed in `CONSOLE_ROUTES`) or
 * `config.public`, else start-up fails. A guarded route first resolves the session (none: to the
 * login page, back here after), checks the role (403 page) and, for a POST, the origin and the
 * CSRF token (403 page), before its schemas are validated, so no unauthenticated request learns
 * what a form would accept. Errors of a guarded handler become the console's error pages.
 */
export function registerGuard(scope: FastifyInstance, kit: ConsoleKit): void {
  scope.decorateRequest('consoleSession', null);
  scope.decorateRequest('consoleView', null);
  scope.addHook('onRoute', (route) => {
    const config = (route.config ?? {}) as { page?: PageName; public?: boolean };
    if (config.public) return;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => (m === 'HEAD' ? 'GET' : m));
    const page = config.page;
    for (const method of methods) {
      const entry = CONSOLE_ROUTES.find((r) => r.method === method && r.url === route.url);
      if (!entry) throw new Error(`console route ${method} ${route.url} is missing from CONSOLE_ROUTES`);
      if (entry.page !== page) throw new Error(`console route ${method} ${route.url} must declare config.page '${entry.page}'`);
    }
    route.preValidation = [guardFor(kit, declared(page)), ...hooksOf(route.preValidation)];
  });
  scope.setErrorHandler(async (error: FastifyError, request, reply) => {
    const v = request.consoleView;
    // Not past the guard (a hook of the collector, a public route): the collector's handler answers.
    if (!v) throw error;
    return errorPage(kit, request, reply, v, error);
  });
}

const declared = (page: PageName | undefined): PageName => {
  if (!page) throw new Error('a guarded console route needs config.page');
  return page;
};

const hooksOf = (hooks: RouteOptions['preValidation']) => (hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]);

function guardFor(kit: ConsoleKit, page: PageName) {
  const { ctx } = kit;
  return async function consoleGuard(request: FastifyRequest, reply: FastifyReply) {
    const post = request.method === 'POST';
    const session = await resolveSession(ctx.db, request.cookies[kit.names.session], ctx.clock.now());
    if (!session) {
      if (post) kit.flashNext(reply, 'error', 'login.expired');
      return kit.redirect(reply, `/login?next=${encodeURIComponent(post ? '/' : request.url)}`);
    }
    const v = kit.viewFor(request, session, session.csrf, post ? undefined : kit.takeFlash(request, reply));
    if (!mayOpen(session.role, page))
      return kit.problem(reply, v, 403, 'error.forbidden.title', v.t('error.forbidden.body', { role: v.t(`role.${session.role}`) }));
    if (post) {
      const body = (request.body ?? {}) as Record<string, unknown>;
      if (kit.crossSite(request) || !csrfMatches(session, body._csrf)) return kit.problem(reply, v, 403, 'error.csrf.title', v.t('error.csrf.body'));
    }
    request.consoleSession = session;
    request.consoleView = v;
  };
}

/** A guarded page's error as the console shows it: a real message below 500, a plain one above. */
function errorPage(kit: ConsoleKit, request: FastifyRequest, reply: FastifyReply, v: View, err: unknown) {
  if (err instanceof MamoriError && err.code === 'not_found') return kit.problem(reply, v, 404, 'error.notFound.title', v.t('error.notFound.body'));
  if (err instanceof MamoriError && (err.code === 'bad_request' || err.code === 'validation_failed'))
    return kit.problem(reply, v, 400, 'error.bad.title', err.message);
  if (err instanceof z.ZodError) return kit.problem(reply, v, 400, 'error.bad.title', err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  if (hasZodFastifySchemaValidationErrors(err))
    return kit.problem(
      reply,
      v,
      400,
      'error.bad.title',
      err.validation.map((i) => `${i.instancePath.replace(/^\//, '').replace(/\//g, '.')}: ${i.message}`).join('; '),
    );
  request.log.error({ err }, 'console request failed');
  return kit.problem(reply, v, 500, 'error.internal.title', v.t('error.internal.body'));
}
