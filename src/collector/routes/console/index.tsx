import type { FastifyInstance } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { resolveSession } from '../../console/auth';
import type { CollectorContext } from '../../context';
import { registerGuard } from '../../plugins/guard';
import { formHasNul } from '../../plugins/nul-check';
import { auditPages } from './audit';
import { dashboardPages } from './dashboard';
import { exceptionPages } from './exceptions';
import { exportPages } from './exports';
import { incidentPages } from './incidents';
import { createConsoleKit, type ConsoleKit, type ConsoleOptions } from './kit';
import { langPages } from './lang';
import { loginPages } from './login';
import { policyPages } from './policies';
import { terminalPages } from './terminals';
import { userPages } from './users';

export { CONSOLE_ROUTES, type ConsoleRoute } from './table';
export { safeNext, type ConsoleOptions } from './kit';
export { zonedMidnight } from './audit';

/** Every page of the console, one plugin per page (docs/design.md#console-routes). */
const PAGES = [loginPages, langPages, dashboardPages, terminalPages, incidentPages, exceptionPages, policyPages, exportPages, userPages, auditPages] as const;

/**
 * Adds the admin web console at `/`: login with database sessions, CSRF tokens on every form,
 * a CSP without inline script, Japanese and English pages, roles checked on every route by the
 * guard (`plugins/guard.ts`) from the page each route declares.
 */
export async function registerConsole(app: FastifyInstance, ctx: CollectorContext, opts: ConsoleOptions): Promise<void> {
  const kit = createConsoleKit(ctx, opts);
  await app.register(async (scope) => {
    scope.setValidatorCompiler(validatorCompiler);
    // Cookies, forms, security headers and static files: src/collector/plugins, registered by server.ts.
    registerNulCheck(scope, kit);
    // The pages sit in a scope of their own: the guard's error pages must not take over the errors
    // of the static files (answered by the collector's handler, as before).
    await scope.register(async (pagesScope) => {
      registerGuard(pagesScope, kit);
      for (const pages of PAGES) pages(pagesScope, kit);
    });
    // Unknown pages under the console get its 404 page (the API keeps its JSON 404).
    scope.setNotFoundHandler(async (request, reply) => {
      if (request.url.startsWith('/api/'))
        return reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
      const session = await resolveSession(ctx.db, request.cookies[kit.names.session], ctx.clock.now());
      const v = kit.viewFor(request, session, session?.csrf ?? '');
      return kit.problem(reply, v, 404, 'error.notFound.title', v.t('error.notFound.body'));
    });
  });
}

/**
 * Form fields with a NUL are refused whole: PostgreSQL's text cannot hold one, and no name,
 * password or policy field needs it. Checked before the guard and any schema.
 */
function registerNulCheck(scope: FastifyInstance, kit: ConsoleKit): void {
  scope.addHook('preValidation', async (request, reply) => {
    if (formHasNul(request.body)) {
      const v = kit.viewFor(request, null, '');
      return kit.problem(reply, v, 400, 'error.bad.title', v.t('error.nul'));
    }
  });
}
