import fastifyCookie from '@fastify/cookie';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/collector/admins';
import { registerGuard } from '../../src/collector/plugins/guard';
import { createConsoleKit, form, FormField } from '../../src/collector/routes/console/kit';
import { createCollector, type Collector } from '../../src/collector/server';
import { consoleLogin } from '../helpers/console-login';
import { createEngineDatabase } from '../helpers/pg';

const PASSWORD = 'correct horse battery staple';

/** The console's guard (docs/design.md#console-routes): declared pages, checked before any schema. */
describe('the console guard', () => {
  let collector: Collector;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const { url, drop } = await createEngineDatabase('sqlite', 'mamori-console-guard-');
    cleanup = drop;
    collector = await createCollector({ db: url, logger: false });
    await addAdmin(collector.ctx.db, 'kanri', 'admin', PASSWORD);
    await addAdmin(collector.ctx.db, 'kansa', 'auditor', PASSWORD);
  });
  afterAll(async () => {
    await collector.stop();
    await cleanup();
  });

  /** A scope with the guard and one route, as a page plugin would add it. */
  async function startWith(route: (scope: ReturnType<typeof Fastify>) => void): Promise<void> {
    const app = Fastify();
    const kit = createConsoleKit(collector.ctx, { secure: false, limiters: undefined as never });
    await app.register(async (scope) => {
      await scope.register(fastifyCookie);
      registerGuard(scope, kit);
      route(scope as never);
    });
    await app.ready();
    await app.close();
  }

  it('refuses to start with a console route that declares no page, or another page than CONSOLE_ROUTES', async () => {
    await expect(startWith((scope) => scope.get('/terminals', async () => 'open to all'))).rejects.toThrow(
      "console route GET /terminals must declare config.page 'terminals'",
    );
    await expect(startWith((scope) => scope.get('/users', { config: { page: 'dashboard' } }, async () => 'x'))).rejects.toThrow(
      "must declare config.page 'users'",
    );
    await expect(startWith((scope) => scope.get('/secret', { config: { page: 'dashboard' } }, async () => 'x'))).rejects.toThrow(
      'console route GET /secret is missing from CONSOLE_ROUTES',
    );
    await expect(startWith((scope) => scope.get('/terminals', { config: { page: 'terminals' } }, async () => 'x'))).resolves.toBeUndefined();
    expect(form({ minutes: FormField }).safeParse({ _csrf: 't', minutes: '5', extra: 'kept' })).toMatchObject({ success: true, data: { extra: 'kept' } });
  });

  it('answers a request without a session with the login page before any schema, on GET, HEAD and POST', async () => {
    const head = await collector.app.inject({ method: 'HEAD', url: '/terminals?page=x' });
    expect(head.statusCode).toBe(303);
    expect(head.headers.location).toBe('/login?next=%2Fterminals%3Fpage%3Dx');
    // A form the schema would not take (not an object, repeated fields) still meets the guard first.
    const post = await collector.app.inject({
      method: 'POST',
      url: '/exceptions/x/approve',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'minutes=1&minutes=2',
    });
    expect(post.statusCode).toBe(303);
    expect(post.headers.location).toBe('/login?next=%2F');
  });

  it('a static file request that fails still answers, and does not crash the collector through the console error pages', async () => {
    // The split first gave the static files the console's error handler: `GET /static/` then never
    // answered and its rejection went unhandled (found by the fuzzer).
    const dir = await collector.app.inject({ method: 'GET', url: '/static/' });
    expect(dir.statusCode).toBe(403);
    expect(dir.json()).toEqual({ error: { code: 'forbidden', message: 'Forbidden' } });
    expect((await collector.app.inject({ method: 'GET', url: '/static/console.css' })).statusCode).toBe(200);
  });

  it('refuses an auditor and a missing CSRF token before the form is validated, and a NUL before both', async () => {
    const auditor = await consoleLogin(collector, 'kansa', PASSWORD);
    const forbidden = await collector.app.inject({
      method: 'POST',
      url: '/exceptions/x/approve',
      headers: { cookie: auditor.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${auditor.csrf}&minutes=1`,
    });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.body).toContain('監査担当者');
    const admin = await consoleLogin(collector, 'kanri', PASSWORD);
    const noToken = await collector.app.inject({
      method: 'POST',
      url: '/incidents/x/status',
      headers: { cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'status=closed',
    });
    expect(noToken.statusCode).toBe(403);
    const nul = await collector.app.inject({
      method: 'POST',
      url: '/incidents/x/status',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'status=%00',
    });
    expect(nul.statusCode).toBe(400);
    // Past the guard, a bad value is the console's 400 page, not the API's JSON.
    const bad = await collector.app.inject({
      method: 'POST',
      url: '/incidents/x/status',
      headers: { cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${admin.csrf}&status=reopened`,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toMatch(/^text\/html/);
    expect(bad.body).toContain('status: ');
  });
});
