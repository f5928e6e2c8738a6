import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { csrfMatches, login, logout, pruneSessions, resolveSession } from '../../console/auth';
import { LoginPage } from '../../console/views/pages/login';
import { AnyQuery, FormField, form, safeNext, str, type ConsoleKit } from './kit';

const LoginForm = form({ username: FormField, password: FormField, next: FormField });

/** Sign-in and sign-out: open without a session, each checked against its own token. */
export function loginPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, opts, names, cookieBase, viewFor, send, problem, flashNext, takeFlash, redirect, crossSite } = kit;

  scope.get('/login', { config: { public: true }, schema: { querystring: AnyQuery } }, async (request, reply) => {
    const next = safeNext((request.query as Record<string, unknown>).next);
    if (await resolveSession(ctx.db, request.cookies[names.session], ctx.clock.now())) return redirect(reply, next);
    const nonce = crypto.randomBytes(24).toString('base64url');
    reply.setCookie(names.login, nonce, { ...cookieBase, maxAge: 3600 });
    return send(reply, <LoginPage v={viewFor(request, null, nonce, takeFlash(request, reply))} next={next} />);
  });

  scope.post('/login', { config: { public: true }, schema: { body: LoginForm } }, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    const nonce = request.cookies[names.login];
    if (crossSite(request) || !nonce || str(body._csrf) !== nonce) {
      const v = viewFor(request, null, '');
      return problem(reply, v, 403, 'error.csrf.title', v.t('error.csrf.body'));
    }
    // Counted before the password is checked, so a guessing run costs no scrypt once over the limit.
    const wait =
      (await opts.limiters.take('loginPerAddress', request, request.ip)) ??
      (await opts.limiters.take('loginPerAccount', request, str(body.username).trim().slice(0, 64).toLowerCase()));
    if (wait !== null) {
      const v = viewFor(request, null, nonce);
      reply.header('retry-after', String(wait));
      return send(
        reply,
        <LoginPage
          v={{ ...v, flash: { kind: 'error', text: v.t('login.rateLimited', { seconds: wait }) } }}
          next={next}
          username={str(body.username).slice(0, 64)}
        />,
        429,
      );
    }
    const result = await login(
      ctx.db,
      { username: str(body.username), password: str(body.password), address: request.ip, userAgent: str(request.headers['user-agent']) },
      ctx.clock.now(),
    );
    if (!result.ok) {
      const v = viewFor(request, null, nonce);
      const text = result.reason === 'locked' ? v.t('login.locked', { until: v.fmt.dateTime(result.lockedUntil) }) : v.t('login.failed');
      return send(reply, <LoginPage v={{ ...v, flash: { kind: 'error', text } }} next={next} username={str(body.username).slice(0, 64)} />, 401);
    }
    if (Math.random() < 0.05) await pruneSessions(ctx.db, ctx.clock.now());
    reply.clearCookie(names.login, cookieBase);
    reply.setCookie(names.session, result.sessionId, cookieBase);
    return redirect(reply, next);
  });

  scope.post('/logout', { config: { public: true }, schema: { body: form({}) } }, async (request, reply) => {
    const session = await resolveSession(ctx.db, request.cookies[names.session], ctx.clock.now());
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (session && !crossSite(request) && csrfMatches(session, body._csrf)) await logout(ctx.db, session, request.ip);
    else if (session) {
      const v = viewFor(request, session, session.csrf);
      return problem(reply, v, 403, 'error.csrf.title', v.t('error.csrf.body'));
    }
    reply.clearCookie(names.session, cookieBase);
    flashNext(reply, 'ok', 'login.loggedOut');
    return redirect(reply, '/login');
  });
}
