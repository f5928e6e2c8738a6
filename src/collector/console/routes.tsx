import crypto from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { VNode } from 'preact';
import { z } from 'zod';
import { MAX_UNLOCK_MINUTES, MamoriError, Policy, PolicyInput, SEGMENTS, type Segment } from '../../shared';
import { addAdmin, audit, deleteAdmin, listAdmins, rotateApiToken, setPassword, setRole, unlockAccount, type Actor, type Role } from '../admins';
import type { CollectorContext } from '../context';
import type { Limiters } from '../rate-limits';
import { decideException, listExceptions, unlockCode } from '../exceptions';
import { ExportQuery, attachment, sendLedger } from '../export/http';
import { csvField } from '../export/csv';
import { endStream, writeChunk } from '../export/stream';
import { INCIDENT_STATUSES, listIncidents, moveIncident } from '../incidents';
import { applyPolicyChange, currentPolicy, policyHistory } from '../policies';
import { csrfMatches, login, logout, pruneSessions, resolveSession, type ConsoleSession } from './auth';
import { createFormatter, DEFAULT_TIME_ZONE, isTimeZone } from './format';
import { translator, type Lang, type MessageKey } from './messages';
import { draftFromForm, draftFromPolicy, validateDraft, type DraftErrors, type PolicyDraft } from './policy-form';
import { SEEN_FILTERS, TERMINAL_STATES, auditRowsFor, dashboardData, incidentById, searchAudit, searchTerminals, terminalDetail, terminalEvents, terminalsIn, usbHistory, verifyStoredChain } from './queries';
import { formHasNul } from '../plugins/nul-check';
import { renderPage } from './render';
import { Problem } from './views/layout';
import { AuditPage, detailText } from './views/pages/audit';
import { DashboardPage } from './views/pages/dashboard';
import { ExceptionsPage, durationLabel } from './views/pages/exceptions';
import { ExportsPage } from './views/pages/exports';
import { IncidentPage, IncidentsPage } from './views/pages/incidents';
import { LoginPage } from './views/pages/login';
import { PoliciesPage, PolicyEditPage, PolicyPreviewPage, PolicyVersionPage, isSegment, type HistoryEntry } from './views/pages/policies';
import { TerminalPage, TerminalsPage } from './views/pages/terminals';
import { UsersPage } from './views/pages/users';
import { mayOpen, PAGE_ROLES, type Flash, type PageName, type View } from './views/view';

const TERMINALS_PAGE = 50;
const EVENTS_PAGE = 100;
const AUDIT_PAGE = 100;
/** Decided requests shown under the pending ones, newest first. */
const DECIDED_SHOWN = 200;

export interface ConsoleOptions {
  /** Served over TLS: cookies get `Secure` and the `__Host-` prefix. */
  secure: boolean;
  /** The collector's rate limits: sign-ins are counted per address and per account. */
  limiters: Limiters;
}

/** One console route and the page whose roles guard it. */
export interface ConsoleRoute {
  method: 'GET' | 'POST';
  url: string;
  page: PageName;
}

/**
 * Every page and action of the console with the page whose roles guard it: the role matrix, in
 * one place. A route registered without an entry here fails at start-up.
 */
export const CONSOLE_ROUTES: readonly ConsoleRoute[] = [
  { method: 'GET', url: '/', page: 'dashboard' },
  { method: 'GET', url: '/terminals', page: 'terminals' },
  { method: 'GET', url: '/terminals/:id', page: 'terminals' },
  { method: 'POST', url: '/terminals/:id/verify', page: 'terminals' },
  { method: 'GET', url: '/incidents', page: 'incidents' },
  { method: 'GET', url: '/incidents/:id', page: 'incidents' },
  { method: 'POST', url: '/incidents/:id/status', page: 'incidentWorkflow' },
  { method: 'GET', url: '/exceptions', page: 'exceptions' },
  { method: 'POST', url: '/exceptions/:id/approve', page: 'exceptions' },
  { method: 'POST', url: '/exceptions/:id/deny', page: 'exceptions' },
  { method: 'POST', url: '/exceptions/unlock', page: 'exceptions' },
  { method: 'GET', url: '/policies', page: 'policies' },
  { method: 'GET', url: '/policies/:segment', page: 'policies' },
  { method: 'POST', url: '/policies/:segment/preview', page: 'policies' },
  { method: 'POST', url: '/policies/:segment/edit', page: 'policies' },
  { method: 'POST', url: '/policies/:segment', page: 'policies' },
  { method: 'GET', url: '/policies/:segment/versions/:version', page: 'policies' },
  { method: 'GET', url: '/exports', page: 'exports' },
  { method: 'GET', url: '/exports/download', page: 'exports' },
  { method: 'GET', url: '/users', page: 'users' },
  { method: 'POST', url: '/users', page: 'users' },
  { method: 'POST', url: '/users/:name/role', page: 'users' },
  { method: 'POST', url: '/users/:name/password', page: 'users' },
  { method: 'POST', url: '/users/:name/unlock', page: 'users' },
  { method: 'POST', url: '/users/:name/token', page: 'users' },
  { method: 'POST', url: '/users/:name/delete', page: 'users' },
  { method: 'GET', url: '/audit', page: 'audit' },
  { method: 'GET', url: '/audit/export.csv', page: 'audit' },
];

type Handler = (request: FastifyRequest, reply: FastifyReply, s: ConsoleSession, v: View) => Promise<unknown>;

const cookieNames = (secure: boolean) => ({
  session: secure ? '__Host-mamori_sid' : 'mamori_sid',
  login: secure ? '__Host-mamori_login' : 'mamori_login',
  flash: 'mamori_flash',
  lang: 'mamori_lang',
  tz: 'mamori_tz',
});

/**
 * A local path to return to after login or a language switch, ready for a `Location` header:
 * characters outside printable ASCII are percent-encoded (`/あ` → `/%E3%81%82`), since Node refuses
 * a header holding them. Anything else (another host, control characters, a lone surrogate, over
 * 500 characters) becomes `/`.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || next.length > 500) return '/';
  if (/[\u0000-\u001f\u007f]|\p{Cs}/u.test(next)) return '/';
  return next.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}

const str = (value: unknown) => (typeof value === 'string' ? value : '');

/**
 * Adds the admin web console at `/`: login with database sessions, CSRF tokens on every form,
 * a CSP without inline script, Japanese and English pages, roles checked on every route.
 */
export async function registerConsole(app: FastifyInstance, ctx: CollectorContext, opts: ConsoleOptions): Promise<void> {
  const names = cookieNames(opts.secure);
  const cookieBase = { path: '/', httpOnly: true, sameSite: 'strict' as const, secure: opts.secure };

  await app.register(async (scope) => {
    // Cookies, forms, security headers and static files: src/collector/plugins, registered by server.ts.
    const langOf = (request: FastifyRequest): Lang => (request.cookies[names.lang] === 'en' ? 'en' : 'ja');
    const zoneOf = (request: FastifyRequest): string => {
      const zone = request.cookies[names.tz];
      return zone && isTimeZone(zone) ? zone : DEFAULT_TIME_ZONE;
    };
    const viewFor = (request: FastifyRequest, user: ConsoleSession | null, csrf: string, flash?: Flash): View => {
      const lang = langOf(request);
      return { t: translator(lang), fmt: createFormatter(lang, zoneOf(request)), lang, user: user ? { username: user.username, role: user.role } : null, csrf, path: request.url, flash, now: ctx.clock.now() };
    };
    const actorOf = (request: FastifyRequest, s: ConsoleSession): Actor => ({ username: s.username, role: s.role, address: request.ip });

    const send = (reply: FastifyReply, page: VNode, status = 200) =>
      reply.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(renderPage(page));
    const problem = (reply: FastifyReply, v: View, status: number, title: MessageKey, body: string) => send(reply, <Problem v={v} title={v.t(title)} body={body} />, status);

    // Form fields with a NUL are refused whole: PostgreSQL's text cannot hold one, and no name,
    // password or policy field needs it.
    scope.addHook('preHandler', async (request, reply) => {
      if (formHasNul(request.body)) {
        const v = viewFor(request, null, '');
        return problem(reply, v, 400, 'error.bad.title', v.t('error.nul'));
      }
    });

    /** A message for the next page, carried in a short-lived cookie (never a secret). */
    const flashNext = (reply: FastifyReply, kind: Flash['kind'], key: MessageKey, vars: Record<string, string | number> = {}) =>
      reply.setCookie(names.flash, Buffer.from(JSON.stringify({ kind, key, vars })).toString('base64url'), { ...cookieBase, maxAge: 60 });
    const takeFlash = (request: FastifyRequest, reply: FastifyReply): Flash | undefined => {
      const raw = request.cookies[names.flash];
      if (!raw) return undefined;
      reply.clearCookie(names.flash, cookieBase);
      try {
        const { kind, key, vars } = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { kind: Flash['kind']; key: MessageKey; vars: Record<string, string | number> };
        const t = translator(langOf(request));
        return { kind: kind === 'error' ? 'error' : 'ok', text: t(key, vars) };
      } catch {
        return undefined;
      }
    };
    const redirect = (reply: FastifyReply, to: string) => reply.header('cache-control', 'no-store').redirect(to, 303);

    /** A request from another site: an Origin or Fetch Metadata header says so. */
    const crossSite = (request: FastifyRequest): boolean => {
      const site = request.headers['sec-fetch-site'];
      if (site === 'cross-site' || site === 'same-site') return true;
      const origin = request.headers.origin;
      return !!origin && origin !== 'null' && origin !== `${request.protocol}://${request.host}`;
    };

    /** Registers a page or action: session, role, and (for POST) origin and CSRF are checked first. */
    const route = (method: 'GET' | 'POST', url: string, handler: Handler) => {
      const entry = CONSOLE_ROUTES.find((r) => r.method === method && r.url === url);
      if (!entry) throw new Error(`console route ${method} ${url} is missing from CONSOLE_ROUTES`);
      const page = entry.page;
      scope.route({
        method,
        url,
        handler: async (request, reply) => {
          const session = await resolveSession(ctx.db, request.cookies[names.session], ctx.clock.now());
          if (!session) {
            if (method === 'POST') flashNext(reply, 'error', 'login.expired');
            return redirect(reply, `/login?next=${encodeURIComponent(method === 'GET' ? request.url : '/')}`);
          }
          const v = viewFor(request, session, session.csrf, method === 'GET' ? takeFlash(request, reply) : undefined);
          if (!mayOpen(session.role, page)) return problem(reply, v, 403, 'error.forbidden.title', v.t('error.forbidden.body', { role: v.t(`role.${session.role}`) }));
          if (method === 'POST') {
            const body = (request.body ?? {}) as Record<string, unknown>;
            if (crossSite(request) || !csrfMatches(session, body._csrf)) return problem(reply, v, 403, 'error.csrf.title', v.t('error.csrf.body'));
          }
          try {
            return await handler(request, reply, session, v);
          } catch (err) {
            if (err instanceof MamoriError && err.code === 'not_found') return problem(reply, v, 404, 'error.notFound.title', v.t('error.notFound.body'));
            if (err instanceof MamoriError && (err.code === 'bad_request' || err.code === 'validation_failed')) return problem(reply, v, 400, 'error.bad.title', err.message);
            if (err instanceof z.ZodError) return problem(reply, v, 400, 'error.bad.title', err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
            request.log.error({ err }, 'console request failed');
            return problem(reply, v, 500, 'error.internal.title', v.t('error.internal.body'));
          }
        },
      });
    };

    // ---- login, logout, language ----

    scope.get('/login', async (request, reply) => {
      const next = safeNext((request.query as Record<string, unknown>).next);
      if (await resolveSession(ctx.db, request.cookies[names.session], ctx.clock.now())) return redirect(reply, next);
      const nonce = crypto.randomBytes(24).toString('base64url');
      reply.setCookie(names.login, nonce, { ...cookieBase, maxAge: 3600 });
      return send(reply, <LoginPage v={viewFor(request, null, nonce, takeFlash(request, reply))} next={next} />);
    });

    scope.post('/login', async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const next = safeNext(body.next);
      const nonce = request.cookies[names.login];
      if (crossSite(request) || !nonce || str(body._csrf) !== nonce) {
        const v = viewFor(request, null, '');
        return problem(reply, v, 403, 'error.csrf.title', v.t('error.csrf.body'));
      }
      // Counted before the password is checked, so a guessing run costs no scrypt once over the limit.
      const wait = (await opts.limiters.take('loginPerAddress', request, request.ip)) ?? (await opts.limiters.take('loginPerAccount', request, str(body.username).trim().slice(0, 64).toLowerCase()));
      if (wait !== null) {
        const v = viewFor(request, null, nonce);
        reply.header('retry-after', String(wait));
        return send(reply, <LoginPage v={{ ...v, flash: { kind: 'error', text: v.t('login.rateLimited', { seconds: wait }) } }} next={next} username={str(body.username).slice(0, 64)} />, 429);
      }
      const result = await login(ctx.db, { username: str(body.username), password: str(body.password), address: request.ip, userAgent: str(request.headers['user-agent']) }, ctx.clock.now());
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

    scope.post('/logout', async (request, reply) => {
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

    scope.get('/lang/:lang', async (request, reply) => {
      const lang = (request.params as { lang: string }).lang === 'en' ? 'en' : 'ja';
      reply.setCookie(names.lang, lang, { path: '/', sameSite: 'lax', secure: opts.secure, maxAge: 365 * 86_400 });
      return redirect(reply, safeNext((request.query as Record<string, unknown>).next));
    });

    // ---- dashboard and terminals ----

    route('GET', '/', async (_request, reply, _s, v) => send(reply, <DashboardPage v={v} d={await dashboardData(ctx.db, ctx.clock.now())} />));

    const TerminalQuery = z.object({
      q: z.string().trim().max(200).optional().catch(undefined),
      segment: z.enum(SEGMENTS).optional().catch(undefined),
      state: z.enum(TERMINAL_STATES).optional().catch(undefined),
      seen: z.enum(SEEN_FILTERS).optional().catch(undefined),
      sort: z.enum(['hostname', 'last_seen']).optional().catch(undefined),
      page: z.coerce.number().int().min(1).max(100_000).catch(1),
    });
    route('GET', '/terminals', async (request, reply, _s, v) => {
      const q = TerminalQuery.parse(request.query ?? {});
      const filter = { ...q, q: q.q || undefined, pageSize: TERMINALS_PAGE };
      const { rows, total } = await searchTerminals(ctx.db, filter, ctx.clock.now());
      return send(reply, <TerminalsPage v={v} filter={filter} rows={rows} total={total} />);
    });

    const terminalPage = async (request: FastifyRequest, reply: FastifyReply, s: ConsoleSession, v: View, verified?: Parameters<typeof TerminalPage>[0]['verified']) => {
      const { id } = request.params as { id: string };
      const t = await terminalDetail(ctx.db, id.slice(0, 100), ctx.clock.now());
      if (!t) throw new MamoriError('not_found', `no terminal ${id}`);
      const q = z.object({ type: z.string().max(40).optional().catch(undefined), before: z.coerce.number().int().min(1).optional().catch(undefined) }).parse(request.query ?? {});
      const type = q.type && /^[a-z_.]+$/.test(q.type) ? q.type : undefined;
      const events = await terminalEvents(ctx.db, t.id, { types: type ? [type] : undefined, before: q.before, limit: EVENTS_PAGE + 1 });
      const more = events.length > EVENTS_PAGE;
      const shown = events.slice(0, EVENTS_PAGE);
      const usb = await usbHistory(ctx.db, t.id);
      // The page shows log-ons with user names: reading it is an admin read of personal data.
      await audit(ctx.db, actorOf(request, s), 'terminal.view', t.id, { hostname: t.hostname, type: type ?? null, before: q.before ?? null });
      return send(reply, <TerminalPage v={v} t={t} usb={usb} events={shown} eventType={type} before={q.before} nextBefore={more ? shown[shown.length - 1]!.seq : undefined} verified={verified} />);
    };
    route('GET', '/terminals/:id', terminalPage);
    route('POST', '/terminals/:id/verify', async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const result = await verifyStoredChain(ctx.db, id.slice(0, 100));
      await audit(ctx.db, actorOf(request, s), 'terminal.verify', id, { count: result.count, broken: result.broken });
      if (result.broken) {
        // A stored history that no longer verifies is flagged like one refused at ingest.
        await ctx.db.updateTable('agents').set({ chain_broken_seq: result.broken.seq }).where('id', '=', id).where('chain_broken_seq', 'is', null).execute();
      }
      return terminalPage(request, reply, s, { ...v, path: `/terminals/${encodeURIComponent(id)}` }, result);
    });

    // ---- incidents ----

    route('GET', '/incidents', async (request, reply, s, v) => {
      const { status } = z.object({ status: z.enum(INCIDENT_STATUSES).optional().catch(undefined) }).parse(request.query ?? {});
      const rows = await listIncidents(ctx.db, status);
      await audit(ctx.db, actorOf(request, s), 'incidents.read', status ?? '*', { count: rows.length });
      return send(reply, <IncidentsPage v={v} rows={rows} status={status} />);
    });
    route('GET', '/incidents/:id', async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const incident = await incidentById(ctx.db, id.slice(0, 100));
      if (!incident) throw new MamoriError('not_found', `no incident ${id}`);
      await audit(ctx.db, actorOf(request, s), 'incidents.read', incident.receipt, { count: 1 });
      return send(reply, <IncidentPage v={v} i={incident} />);
    });
    route('POST', '/incidents/:id/status', async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const { status } = z.object({ status: z.enum(INCIDENT_STATUSES) }).parse(request.body);
      await moveIncident(ctx.db, actorOf(request, s), id.slice(0, 100), status, ctx.clock);
      flashNext(reply, 'ok', 'incidents.moved', { id, status: v.t(`incident.status.${status}`) });
      return redirect(reply, `/incidents/${encodeURIComponent(id)}`);
    });

    // ---- exceptions ----

    const exceptionsPage = async (request: FastifyRequest, reply: FastifyReply, s: ConsoleSession, v: View, status = 200) => {
      const pending = await listExceptions(ctx.db, { status: 'pending' });
      const decided = await listExceptions(ctx.db, { decided: true, limit: DECIDED_SHOWN });
      await audit(ctx.db, actorOf(request, s), 'exceptions.read', '*', { count: pending.length + decided.length });
      return send(reply, <ExceptionsPage v={v} pending={pending} decided={decided} />, status);
    };
    route('GET', '/exceptions', exceptionsPage);
    const Minutes = z.object({ minutes: z.coerce.number().int().min(1).max(MAX_UNLOCK_MINUTES) });
    route('POST', '/exceptions/:id/approve', async (request, reply, s, v) => {
      const { id } = request.params as { id: string };
      const { minutes } = Minutes.parse(request.body);
      const { expiresAt } = await decideException(ctx.db, actorOf(request, s), id.slice(0, 100), { approve: minutes }, ctx.clock);
      flashNext(reply, 'ok', 'exceptions.approved', { id, until: v.fmt.dateTime(expiresAt) });
      return redirect(reply, '/exceptions');
    });
    route('POST', '/exceptions/:id/deny', async (request, reply, s) => {
      const { id } = request.params as { id: string };
      await decideException(ctx.db, actorOf(request, s), id.slice(0, 100), 'deny', ctx.clock);
      flashNext(reply, 'ok', 'exceptions.denied', { id });
      return redirect(reply, '/exceptions');
    });
    route('POST', '/exceptions/unlock', async (request, reply, s, v) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const requestCode = str(body.requestCode).trim().slice(0, 40);
      // A minute count that is not 1–10080 is refused, never replaced by a default the admin did not choose.
      const parsed = Minutes.safeParse(body);
      if (!parsed.success) return exceptionsPage(request, reply, s, { ...v, flash: { kind: 'error', text: v.t('exceptions.unlock.badMinutes', { max: MAX_UNLOCK_MINUTES }) }, path: '/exceptions' }, 400);
      const { minutes } = parsed.data;
      try {
        const device = str(body.device).trim().slice(0, 300);
        const answer = await unlockCode(ctx.db, requestCode, minutes, device || undefined, { actor: actorOf(request, s), clock: ctx.clock });
        // The code is shown in this response only, never carried in a cookie or a URL.
        const flash: Flash = { kind: 'ok', text: `${v.t('exceptions.unlock.result', { host: answer.hostname, minutes: durationLabel(v, minutes), device: answer.scopeText })} ${v.t('exceptions.unlock.readAloud')}`, secret: answer.code };
        return exceptionsPage(request, reply, s, { ...v, flash, path: '/exceptions' });
      } catch (err) {
        if (!(err instanceof MamoriError)) throw err;
        return exceptionsPage(request, reply, s, { ...v, flash: { kind: 'error', text: err.message }, path: '/exceptions' }, 400);
      }
    });

    // ---- policies ----

    const historyEntries = (history: Awaited<ReturnType<typeof policyHistory>>): HistoryEntry[] =>
      history.map((h) => ({ version: h.policy.version, issuedAt: h.policy.issuedAt, by: h.createdBy, mode: h.policy.removableMedia.mode, allowCount: h.policy.removableMedia.allow.length }));
    const segmentParam = (request: FastifyRequest): Segment => {
      const { segment } = request.params as { segment: string };
      if (!isSegment(segment)) throw new MamoriError('not_found', `no segment ${segment}`);
      return segment;
    };
    const editPage = async (reply: FastifyReply, v: View, segment: Segment, draft: PolicyDraft | null, errors: DraftErrors = {}, status = 200) => {
      const history = await policyHistory(ctx.db, segment);
      const current = history[0]!;
      return send(
        reply,
        <PolicyEditPage v={v} segment={segment} current={current.policy} by={current.createdBy} draft={draft ?? draftFromPolicy(current.policy)} errors={errors} history={historyEntries(history)} terminals={await terminalsIn(ctx.db, segment)} />,
        status,
      );
    };

    route('GET', '/policies', async (_request, reply, _s, v) => {
      const summaries = [];
      for (const segment of SEGMENTS) {
        const [latest] = await policyHistory(ctx.db, segment);
        summaries.push({ segment, policy: latest!.policy, by: latest!.createdBy, terminals: await terminalsIn(ctx.db, segment) });
      }
      return send(reply, <PoliciesPage v={v} summaries={summaries} />);
    });
    route('GET', '/policies/:segment', async (request, reply, _s, v) => {
      const segment = segmentParam(request);
      const q = (request.query ?? {}) as Record<string, unknown>;
      let draft: PolicyDraft | null = null;
      const from = Number(str(q.from));
      if (Number.isInteger(from) && from > 0) {
        const old = (await policyHistory(ctx.db, segment)).find((h) => h.policy.version === from);
        if (old) draft = draftFromPolicy(old.policy);
      }
      if (str(q.addVendor) || str(q.addProduct)) {
        // "Add to the allowlist" from a terminal's device list: one prefilled row to check and save.
        draft ??= draftFromPolicy(await currentPolicy(ctx.db, segment));
        draft.allow.push({ vendorId: str(q.addVendor).slice(0, 4), productId: str(q.addProduct).slice(0, 4), serial: str(q.addSerial).slice(0, 255), note: '' });
      }
      return editPage(reply, v, segment, draft);
    });
    route('POST', '/policies/:segment/preview', async (request, reply, _s, v) => {
      const segment = segmentParam(request);
      const draft = draftFromForm((request.body ?? {}) as Record<string, unknown>);
      const { input, errors } = validateDraft(draft, segment, v.t);
      if (!input) return editPage(reply, v, segment, draft, errors, 400);
      const current = await currentPolicy(ctx.db, segment);
      return send(reply, <PolicyPreviewPage v={v} segment={segment} current={current} input={input} document={JSON.stringify(input)} terminals={await terminalsIn(ctx.db, segment)} />);
    });
    const documentOf = (body: Record<string, unknown>, segment: Segment): PolicyInput => {
      let raw: unknown;
      try {
        raw = JSON.parse(str(body.document));
      } catch {
        throw new MamoriError('bad_request', 'the reviewed policy is missing; edit it again');
      }
      const parsed = PolicyInput.safeParse(raw);
      if (!parsed.success || parsed.data.segment !== segment) throw new MamoriError('bad_request', 'the reviewed policy is not valid; edit it again');
      return parsed.data;
    };
    route('POST', '/policies/:segment/edit', async (request, reply, _s, v) => {
      const segment = segmentParam(request);
      return editPage(reply, v, segment, draftFromPolicy(documentOf((request.body ?? {}) as Record<string, unknown>, segment)));
    });
    route('POST', '/policies/:segment', async (request, reply, s, v) => {
      const segment = segmentParam(request);
      const body = (request.body ?? {}) as Record<string, unknown>;
      const input = documentOf(body, segment);
      const current = await currentPolicy(ctx.db, segment);
      if (String(current.version) !== str(body.baseVersion)) {
        // Someone saved in between: show their version rather than overwrite it unseen.
        return editPage(reply, { ...v, flash: { kind: 'error', text: v.t('policies.conflict', { v: current.version }) } }, segment, draftFromPolicy(input), {}, 409);
      }
      const { after } = await applyPolicyChange(ctx.db, ctx.key, input, actorOf(request, s), ctx.clock);
      flashNext(reply, 'ok', 'policies.changed', { segment: v.t(`segment.${segment}`), v: after.version });
      return redirect(reply, `/policies/${segment}`);
    });
    route('GET', '/policies/:segment/versions/:version', async (request, reply, _s, v) => {
      const segment = segmentParam(request);
      const version = Number((request.params as { version: string }).version);
      const history = await policyHistory(ctx.db, segment);
      const at = history.findIndex((h) => h.policy.version === version);
      if (at < 0) throw new MamoriError('not_found', `no version ${version}`);
      return send(reply, <PolicyVersionPage v={v} segment={segment} policy={Policy.parse(history[at]!.policy)} previous={history[at + 1]?.policy ?? null} by={history[at]!.createdBy} />);
    });

    // ---- exports ----

    route('GET', '/exports', async (_request, reply, _s, v) => {
      const { rows } = await searchAudit(ctx.db, { action: 'inventory.export', page: 1, pageSize: 10 });
      return send(reply, <ExportsPage v={v} recent={rows} />);
    });
    route('GET', '/exports/download', async (request, reply, s) => {
      // The form sends an empty segment for "all segments".
      const q = ExportQuery.parse(Object.fromEntries(Object.entries((request.query ?? {}) as Record<string, unknown>).filter(([, value]) => value !== '')));
      return sendLedger(ctx, reply, actorOf(request, s), q);
    });

    // ---- users ----

    const usersPage = async (reply: FastifyReply, v: View, status = 200, errors?: Record<string, string>) => send(reply, <UsersPage v={v} users={await listAdmins(ctx.db)} errors={errors} />, status);
    route('GET', '/users', async (_request, reply, _s, v) => usersPage(reply, v));
    route('POST', '/users', async (request, reply, s, v) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const username = str(body.username).trim();
      if (str(body.password) !== str(body.password2)) return usersPage(reply, { ...v, flash: { kind: 'error', text: v.t('users.passwordMismatch') } }, 400, { password2: v.t('users.passwordMismatch') });
      let token: string;
      try {
        token = await addAdmin(ctx.db, username, str(body.role), str(body.password), { actor: actorOf(request, s) });
      } catch (err) {
        if (err instanceof MamoriError) return usersPage(reply, { ...v, flash: { kind: 'error', text: err.message } }, 400);
        throw err;
      }
      return usersPage(reply, { ...v, path: '/users', flash: { kind: 'ok', text: `${v.t('users.added', { user: username })} ${v.t('users.token', { user: username })}`, secret: token } });
    });
    /** A change to one user (audited by the domain call); a secret is shown in this response, anything else after a redirect. */
    const userAction = (action: string, fn: (request: FastifyRequest, s: ConsoleSession, username: string) => Promise<{ key: MessageKey; vars?: Record<string, string>; secret?: string }>) =>
      route('POST', `/users/:name/${action}`, async (request, reply, s, v) => {
        const username = (request.params as { name: string }).name.slice(0, 64);
        let result: Awaited<ReturnType<typeof fn>>;
        try {
          result = await fn(request, s, username);
        } catch (err) {
          if (err instanceof MamoriError && err.code !== 'not_found') return usersPage(reply, { ...v, path: '/users', flash: { kind: 'error', text: err.message } }, 400);
          throw err;
        }
        const vars = { user: username, ...result.vars };
        if (result.secret) return usersPage(reply, { ...v, path: '/users', flash: { kind: 'ok', text: v.t(result.key, vars), secret: result.secret } });
        flashNext(reply, 'ok', result.key, vars);
        return redirect(reply, '/users');
      });
    // Each domain call audits itself (`user.<action>`); role and password changes end the user's sessions.
    const by = (request: FastifyRequest, s: ConsoleSession) => ({ actor: actorOf(request, s), clock: ctx.clock });
    userAction('role', async (request, s, username) => {
      const change = await setRole(ctx.db, username, str((request.body as Record<string, unknown>).role), by(request, s));
      return { key: 'users.roleSet', vars: { role: translator(langOf(request))(`role.${change.to}`) } };
    });
    userAction('password', async (request, s, username) => {
      await setPassword(ctx.db, username, str((request.body as Record<string, unknown>).password), by(request, s));
      return { key: 'users.passwordSet' };
    });
    userAction('unlock', async (request, s, username) => {
      await unlockAccount(ctx.db, username, by(request, s));
      return { key: 'users.unlocked' };
    });
    userAction('token', async (request, s, username) => ({ key: 'users.token', secret: await rotateApiToken(ctx.db, username, by(request, s)) }));
    userAction('delete', async (request, s, username) => {
      await deleteAdmin(ctx.db, username, actorOf(request, s), { clock: ctx.clock });
      return { key: 'users.deleted' };
    });

    // ---- audit log ----

    const AuditQuery = z.object({
      actor: z.string().trim().max(100).optional().catch(undefined),
      action: z.string().trim().max(60).optional().catch(undefined),
      from: z.iso.date().optional().catch(undefined),
      to: z.iso.date().optional().catch(undefined),
      page: z.coerce.number().int().min(1).max(100_000).catch(1),
    });
    /** Dates typed in the reader's zone become UTC bounds; `to` includes its whole day. */
    const auditFilter = (request: FastifyRequest) => {
      const q = AuditQuery.parse(request.query ?? {});
      const zone = zoneOf(request);
      const startOf = (day: string) => zonedMidnight(day, zone);
      return {
        q,
        filter: {
          actor: q.actor || undefined,
          action: q.action || undefined,
          from: q.from ? startOf(q.from) : undefined,
          to: q.to ? startOf(nextDay(q.to)) : undefined,
          page: q.page,
          pageSize: AUDIT_PAGE,
        },
      };
    };
    route('GET', '/audit', async (request, reply, _s, v) => {
      const { q, filter } = auditFilter(request);
      const { rows, total, actions } = await searchAudit(ctx.db, filter);
      return send(reply, <AuditPage v={v} rows={rows} total={total} actions={actions} filter={filter} query={{ actor: q.actor, action: q.action, from: q.from, to: q.to }} />);
    });
    route('GET', '/audit/export.csv', async (request, reply, s, v) => {
      const { filter } = auditFilter(request);
      await audit(ctx.db, actorOf(request, s), 'audit.export', '*', { actor: filter.actor ?? null, action: filter.action ?? null, from: filter.from ?? null, to: filter.to ?? null });
      // Streamed like the ledger: a year of audit entries need not sit in memory.
      const headers: MessageKey[] = ['auditlog.at', 'auditlog.actor', 'auditlog.role', 'auditlog.action', 'auditlog.target', 'auditlog.detail', 'auditlog.address'];
      const body = new PassThrough();
      const write = async () => {
        await writeChunk(body, `\ufeff${headers.map((h) => csvField(v.t(h))).join(',')}\r\n`);
        for await (const batch of auditRowsFor(ctx.db, filter)) {
          await writeChunk(body, batch.map((r) => `${[v.fmt.dateTime(r.at), r.actor, r.role, r.action, r.target, detailText(r.detail), r.address].map(csvField).join(',')}\r\n`).join(''));
        }
        await endStream(body);
      };
      write().catch((err: unknown) => {
        request.log.warn({ err }, 'audit log export cut short');
        body.destroy(err instanceof Error ? err : new Error(String(err)));
      });
      attachment(reply, `${v.lang === 'ja' ? '操作履歴' : 'audit-log'}_${v.fmt.day(ctx.clock.now()).replace(/-/g, '')}.csv`, 'text/csv; charset=utf-8');
      return reply.send(body);
    });

    // Unknown pages under the console get its 404 page (the API keeps its JSON 404).
    scope.setNotFoundHandler(async (request, reply) => {
      if (request.url.startsWith('/api/')) return reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
      const session = await resolveSession(ctx.db, request.cookies[names.session], ctx.clock.now());
      const v = viewFor(request, session, session?.csrf ?? '');
      return problem(reply, v, 404, 'error.notFound.title', v.t('error.notFound.body'));
    });
  });
}

function nextDay(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** The UTC instant of midnight at the start of `day` in `zone`. */
export function zonedMidnight(day: string, zone: string): string {
  const guess = new Date(`${day}T00:00:00Z`);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
      .formatToParts(guess)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return new Date(guess.getTime() - (asUtc - guess.getTime())).toISOString();
}

/** The roles allowed on each page, re-exported for the role-matrix tests. */
export { PAGE_ROLES };
export type { Role };
