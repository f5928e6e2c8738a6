import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin, deleteAdmin, rotateApiToken } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { tokenHash } from '../../src/collector/crypto';
import { createCollector, type Collector } from '../../src/collector/server';
import { eventHash, fixedClock, makeRequestCode } from '../../src/shared';
import { consoleLogin, type ConsoleLogin } from '../helpers/console-login';
import { seedFleet, sendEvents, type Call, type Seeded, type SeededTerminal } from '../helpers/console-seed';
import { PG_URL, createEngineDatabase } from '../helpers/pg';
import { listRoutes } from '../helpers/routes';

// The authorization matrix: every route the collector registers × every kind of caller, one
// table. A route without a row fails the suite. Each allowed cell checks that the action
// happened; each denied cell checks the status and that no table changed.

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
const PASSWORD = 'correct horse battery staple';

const PRINCIPALS = ['none', 'agentOwn', 'agentOther', 'auditor', 'admin', 'deletedUser', 'expiredSession'] as const;
type Principal = (typeof PRINCIPALS)[number];
const EVERYONE = PRINCIPALS;

interface Prepared {
  url: string;
  /** A JSON body (API routes). */
  body?: unknown;
  /** Form fields (console routes); `_csrf` of the caller's session is added. */
  form?: Record<string, string>;
  /** Replaces the caller's console session (logout ends the one it is given). */
  session?: ConsoleLogin;
  /** A cookie sent beside the caller's (the login form's nonce). */
  extraCookie?: string;
  /** For an allowed cell: asserts the action happened. */
  happened: (res: { statusCode: number; body: string; headers: Record<string, unknown> }) => Promise<void>;
}

interface Row {
  allow: readonly Principal[];
  /** The status of an allowed cell (default 200); a function where it depends on the caller. */
  status?: number | ((p: Principal) => number);
  prepare: (p: Principal) => Promise<Prepared>;
}

describe.each(ENGINES)('the authorization matrix on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  const clock = fixedClock(new Date());
  let collector: Collector;
  let cleanup: () => Promise<void>;
  let seeded: Seeded;
  let own: SeededTerminal;
  let other: SeededTerminal;
  const tokens = {} as Record<'admin' | 'auditor' | 'deletedUser' | 'expiredSession', string>;
  const sessions = {} as Record<'admin' | 'auditor' | 'deletedUser' | 'expiredSession', ConsoleLogin>;
  let expiredRow: Record<string, unknown>;
  let call: Call;

  beforeAll(async () => {
    if (skip) return;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-authz-');
    cleanup = drop;
    const generous = { max: 100_000, windowMs: 60_000 };
    collector = await createCollector({
      db: url,
      logger: false,
      clock,
      rateLimits: {
        loginPerAddress: generous,
        loginPerAccount: generous,
        enrollPerAddress: generous,
        enrollPerToken: generous,
        agentPerAgent: generous,
        adminPerAddress: generous,
        adminPerToken: generous,
      },
    });
    const db = collector.ctx.db;
    tokens.admin = await addAdmin(db, 'kanri', 'admin', PASSWORD);
    tokens.auditor = await addAdmin(db, 'kansa', 'auditor', PASSWORD);
    await addAdmin(db, 'taishoku', 'admin', PASSWORD);
    await addAdmin(db, 'furui', 'auditor', PASSWORD);
    sessions.admin = await consoleLogin(collector, 'kanri', PASSWORD);
    sessions.auditor = await consoleLogin(collector, 'kansa', PASSWORD);
    // A deleted user: their token and session as they were before the deletion.
    tokens.deletedUser = (await rotateApiToken(db, 'taishoku'))!;
    sessions.deletedUser = await consoleLogin(collector, 'taishoku', PASSWORD);
    await deleteAdmin(db, 'taishoku', 'kanri');
    // An expired session: opened 13 hours ago (past the 12-hour limit); for the API, a token that
    // has since been replaced.
    clock.set(new Date(clock.now().getTime() - 13 * 3_600_000));
    sessions.expiredSession = await consoleLogin(collector, 'furui', PASSWORD);
    clock.set(new Date(clock.now().getTime() + 13 * 3_600_000));
    tokens.expiredSession = await rotateApiToken(db, 'furui');
    await rotateApiToken(db, 'furui');
    expiredRow = (await db
      .selectFrom('console_sessions')
      .selectAll()
      .where('id_hash', '=', tokenHash(sessions.expiredSession.sid))
      .executeTakeFirstOrThrow()) as unknown as Record<string, unknown>;
    call = async (method, u, opts = {}) => {
      const res = await collector.app.inject({
        method: method as 'GET',
        url: u,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        payload: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
      return { status: res.statusCode, json: res.body ? (JSON.parse(res.body) as unknown) : null };
    };
    seeded = await seedFleet(call, (segment) => createEnrollmentToken(db, { segment, ttlMs: 3_600_000, uses: 1 }, clock), clock.now());
    own = seeded.byHost('SOUMU-PC001');
    other = seeded.byHost('LGWAN-PC101');
  });
  afterAll(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  // ---- fixtures made fresh for each cell ----

  const db = () => collector.ctx.db;
  let counter = 0;
  const unique = (prefix: string) => `${prefix}${++counter}`;
  const auditCount = async (action: string) => (await db().selectFrom('audit_log').select('id').where('action', '=', action).execute()).length;
  const freshException = async () => {
    const id = crypto.randomUUID();
    const device = { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' };
    const requestCode = makeRequestCode(own.enrolled.agentId, device, crypto.randomBytes(5));
    const status = await sendEvents(call, own, [
      { at: clock.now(), type: 'exception.requested', payload: { requestId: id, requestCode, device, reason: '資料の持ち出し', minutes: 60 } },
    ]);
    expect(status).toBe(200);
    return { id, requestCode };
  };
  const exceptionStatus = async (id: string) =>
    (await db().selectFrom('exceptions').select('status').where('request_id', '=', id).executeTakeFirstOrThrow()).status;
  const freshIncident = async () => {
    const receipt = `INC-AUTHZ-${crypto.randomBytes(4).toString('hex').toUpperCase()}`;
    const status = await sendEvents(call, own, [
      {
        at: clock.now(),
        type: 'incident.reported',
        payload: {
          receipt,
          category: 'other',
          description: '不審な電話',
          context: { hostname: own.hostname, osUser: 'yamada.taro', inventoryHash: '0'.repeat(64), recentEvents: [] },
        },
      },
    ]);
    expect(status).toBe(200);
    return receipt;
  };
  const incidentStatus = async (id: string) => (await db().selectFrom('incidents').select('status').where('receipt', '=', id).executeTakeFirstOrThrow()).status;
  const freshUser = async () => {
    const name = unique('shokuin-');
    await addAdmin(db(), name, 'auditor', PASSWORD);
    return name;
  };
  const userRow = (name: string) => db().selectFrom('admins').selectAll().where('username', '=', name).executeTakeFirst();
  const policyVersion = async (segment: string) =>
    Number(
      (
        await db()
          .selectFrom('policies')
          .select((eb) => eb.fn.max('version').as('v'))
          .where('segment', '=', segment)
          .executeTakeFirstOrThrow()
      ).v,
    );
  const audited = async (action: string, before: number) => expect(await auditCount(action), `audit ${action}`).toBe(before + 1);
  const page = (marker: string) => async (res: { body: string }) => expect(res.body).toContain(marker);

  /** A read whose audit entry is the proof it happened. */
  const auditedRead = (url: string, action: string, marker?: string) => async (): Promise<Prepared> => {
    const before = await auditCount(action);
    return {
      url,
      happened: async (res) => {
        if (marker) expect(res.body).toContain(marker);
        await audited(action, before);
      },
    };
  };
  const policyDocument = (segment: string) =>
    JSON.stringify({ segment, removableMedia: { mode: 'readonly', allow: [] }, syncIntervalSeconds: 600, incidentContact: 'CSIRT 内線 1234' });

  const ADMINS = ['admin'] as const;
  const READERS = ['admin', 'auditor'] as const;

  const TABLE: Record<string, Row> = {
    // ---- public ----
    'GET /healthz': { allow: EVERYONE, prepare: async () => ({ url: '/healthz', happened: page('"ok"') }) },
    // The API's OpenAPI document: open like /healthz, since it holds nothing the repository does not.
    'GET /api/v1/openapi.json': {
      allow: EVERYONE,
      prepare: async () => ({ url: '/api/v1/openapi.json', happened: page('"/api/v1/agents/{agentId}/events"') }),
    },
    'GET /static/*': {
      allow: EVERYONE,
      prepare: async () => ({ url: '/static/console.css', happened: async (res) => expect(res.body.length).toBeGreaterThan(100) }),
    },
    'GET /lang/:lang': {
      allow: EVERYONE,
      status: 303,
      prepare: async () => ({
        url: '/lang/en?next=/terminals',
        happened: async (res) => expect(String(res.headers['set-cookie'])).toContain('mamori_lang=en'),
      }),
    },
    'GET /login': {
      allow: EVERYONE,
      // A signed-in user is sent on; anyone else gets the form.
      status: (p) => (p === 'admin' || p === 'auditor' ? 303 : 200),
      prepare: async (p) => ({
        url: '/login',
        happened: async (res) => (p === 'admin' || p === 'auditor' ? expect(res.headers.location).toBe('/') : expect(res.body).toContain('name="password"')),
      }),
    },
    'POST /login': {
      allow: EVERYONE,
      status: 303,
      prepare: async () => {
        const name = await freshUser();
        const form = await collector.app.inject({ method: 'GET', url: '/login' });
        const nonce = /name="_csrf" value="([^"]+)"/.exec(form.body)![1]!;
        return {
          url: '/login',
          form: { _csrf: nonce, username: name, password: PASSWORD, next: '/' },
          extraCookie: `mamori_login=${nonce}`,
          happened: async () => expect((await db().selectFrom('console_sessions').select('username').where('username', '=', name).execute()).length).toBe(1),
        };
      },
    },
    'POST /api/v1/enroll': {
      allow: EVERYONE,
      prepare: async () => {
        const token = await createEnrollmentToken(db(), { segment: 'internet', ttlMs: 3_600_000, uses: 1 }, clock);
        const hostname = unique('NEW-PC');
        return {
          url: '/api/v1/enroll',
          body: { token, hostname, machineId: crypto.randomUUID() },
          happened: async () => expect(await db().selectFrom('agents').select('id').where('hostname', '=', hostname).execute()).toHaveLength(1),
        };
      },
    },
    'POST /logout': {
      allow: READERS,
      status: 303,
      prepare: async (p) => {
        const session = p === 'admin' || p === 'auditor' ? await consoleLogin(collector, p === 'admin' ? 'kanri' : 'kansa', PASSWORD) : undefined;
        return {
          url: '/logout',
          form: {},
          session,
          happened: async (res) => {
            expect(res.headers.location).toBe('/login');
            expect(await db().selectFrom('console_sessions').select('username').where('id_hash', '=', tokenHash(session!.sid)).execute()).toEqual([]);
          },
        };
      },
    },

    // ---- the agent API ----
    'POST /api/v1/agents/:agentId/events': {
      allow: ['agentOwn'],
      prepare: async () => {
        const before = own.last.seq;
        const fields = {
          seq: before + 1,
          at: clock.now().toISOString(),
          type: 'session.lock' as const,
          payload: { user: 'yamada.taro', source: 'session' as const },
        };
        const hash = eventHash(own.last.hash, fields);
        return {
          url: `/api/v1/agents/${own.enrolled.agentId}/events`,
          body: { events: [{ ...fields, prevHash: own.last.hash, hash }] },
          happened: async (res) => {
            expect(JSON.parse(res.body)).toEqual({ ackSeq: before + 1 });
            own.last = { seq: before + 1, hash };
          },
        };
      },
    },
    'PUT /api/v1/agents/:agentId/inventory': {
      allow: ['agentOwn'],
      status: 204,
      prepare: async () => {
        const latest = await db().selectFrom('inventory_latest').select('snapshot').where('agent_id', '=', own.enrolled.agentId).executeTakeFirstOrThrow();
        const snapshot = { ...(JSON.parse(latest.snapshot) as Record<string, unknown>), hostname: unique('SOUMU-PC001-') };
        return {
          url: `/api/v1/agents/${own.enrolled.agentId}/inventory`,
          body: snapshot,
          happened: async () =>
            expect((await db().selectFrom('agents').select('hostname').where('id', '=', own.enrolled.agentId).executeTakeFirstOrThrow()).hostname).toBe(
              snapshot.hostname,
            ),
        };
      },
    },
    'GET /api/v1/agents/:agentId/policy': {
      allow: ['agentOwn'],
      prepare: async () => ({
        url: `/api/v1/agents/${own.enrolled.agentId}/policy`,
        happened: async (res) => expect(JSON.parse(res.body)).toMatchObject({ segment: 'mynumber', signature: expect.any(String) }),
      }),
    },
    'GET /api/v1/agents/:agentId/exceptions': {
      allow: ['agentOwn'],
      prepare: async () => {
        const { id } = await freshException();
        await call('POST', `/api/v1/admin/exceptions/${id}/approve`, { token: tokens.admin, body: { minutes: 30 } });
        return {
          url: `/api/v1/agents/${own.enrolled.agentId}/exceptions`,
          happened: async (res) => expect((JSON.parse(res.body) as { requestId: string }[]).map((e) => e.requestId)).toContain(id),
        };
      },
    },

    // ---- the admin API ----
    'GET /api/v1/admin/terminals': { allow: READERS, prepare: async () => ({ url: '/api/v1/admin/terminals', happened: page(own.enrolled.agentId) }) },
    'GET /api/v1/admin/events': { allow: READERS, prepare: auditedRead(`/api/v1/admin/events?agentId=${'AGENT'}&limit=5`, 'events.read') },
    'GET /api/v1/admin/inventory/export': { allow: READERS, prepare: auditedRead('/api/v1/admin/inventory/export?format=json', 'inventory.export', 'SOUMU') },
    'GET /api/v1/admin/policies/:segment': { allow: ADMINS, prepare: async () => ({ url: '/api/v1/admin/policies/lgwan', happened: page('"history"') }) },
    'PUT /api/v1/admin/policies/:segment': {
      allow: ADMINS,
      prepare: async () => {
        const before = await policyVersion('internet');
        return {
          url: '/api/v1/admin/policies/internet',
          body: { removableMedia: { mode: 'audit', allow: [] } },
          happened: async () => expect(await policyVersion('internet')).toBe(before + 1),
        };
      },
    },
    'GET /api/v1/admin/incidents': { allow: READERS, prepare: auditedRead('/api/v1/admin/incidents', 'incidents.read', 'INC-') },
    'PATCH /api/v1/admin/incidents/:id': {
      allow: ADMINS,
      prepare: async () => {
        const id = await freshIncident();
        return {
          url: `/api/v1/admin/incidents/${id}`,
          body: { status: 'investigating' },
          happened: async () => expect(await incidentStatus(id)).toBe('investigating'),
        };
      },
    },
    'GET /api/v1/admin/exceptions': { allow: ADMINS, prepare: auditedRead('/api/v1/admin/exceptions', 'exceptions.read') },
    'POST /api/v1/admin/exceptions/:id/approve': {
      allow: ADMINS,
      prepare: async () => {
        const { id } = await freshException();
        return {
          url: `/api/v1/admin/exceptions/${id}/approve`,
          body: { minutes: 60 },
          happened: async () => expect(await exceptionStatus(id)).toBe('approved'),
        };
      },
    },
    'POST /api/v1/admin/exceptions/:id/deny': {
      allow: ADMINS,
      prepare: async () => {
        const { id } = await freshException();
        return { url: `/api/v1/admin/exceptions/${id}/deny`, body: {}, happened: async () => expect(await exceptionStatus(id)).toBe('denied') };
      },
    },
    'GET /api/v1/admin/audit': { allow: READERS, prepare: async () => ({ url: '/api/v1/admin/audit?limit=5', happened: page('"action"') }) },
    // Prometheus metrics: an admin or auditor API token, like the other reads (docs/design.md#metrics).
    'GET /metrics': { allow: READERS, prepare: async () => ({ url: '/metrics', happened: page('mamori_terminals{segment="lgwan",state=') }) },

    // ---- the console ----
    'GET /': { allow: READERS, prepare: async () => ({ url: '/', happened: page('</html>') }) },
    'GET /terminals': { allow: READERS, prepare: async () => ({ url: '/terminals', happened: page('LGWAN-PC101') }) },
    'GET /terminals/:id': { allow: READERS, prepare: auditedRead('/terminals/AGENT', 'terminal.view') },
    'POST /terminals/:id/verify': {
      allow: READERS,
      prepare: async () => ({ ...(await auditedRead('/terminals/AGENT/verify', 'terminal.verify')()), form: {} }),
    },
    'GET /incidents': { allow: READERS, prepare: auditedRead('/incidents', 'incidents.read', 'INC-20261124-7K3Q9D') },
    'GET /incidents/:id': { allow: READERS, prepare: auditedRead('/incidents/INC-20261125-LM5T8R', 'incidents.read', 'INC-20261125-LM5T8R') },
    'POST /incidents/:id/status': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const id = await freshIncident();
        return {
          url: `/incidents/${id}/status`,
          form: { status: 'investigating' },
          happened: async () => expect(await incidentStatus(id)).toBe('investigating'),
        };
      },
    },
    'GET /exceptions': { allow: ADMINS, prepare: auditedRead('/exceptions', 'exceptions.read') },
    'POST /exceptions/:id/approve': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const { id } = await freshException();
        return { url: `/exceptions/${id}/approve`, form: { minutes: '60' }, happened: async () => expect(await exceptionStatus(id)).toBe('approved') };
      },
    },
    'POST /exceptions/:id/deny': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const { id } = await freshException();
        return { url: `/exceptions/${id}/deny`, form: {}, happened: async () => expect(await exceptionStatus(id)).toBe('denied') };
      },
    },
    'POST /exceptions/unlock': {
      allow: ADMINS,
      prepare: async () => {
        const { requestCode } = await freshException();
        const before = await auditCount('unlock');
        return {
          url: '/exceptions/unlock',
          form: { requestCode, minutes: '60' },
          happened: async (res) => {
            expect(res.body).toMatch(/[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/);
            await audited('unlock', before);
          },
        };
      },
    },
    'GET /policies': { allow: ADMINS, prepare: async () => ({ url: '/policies', happened: page('/policies/lgwan') }) },
    'GET /policies/:segment': { allow: ADMINS, prepare: async () => ({ url: '/policies/lgwan', happened: page('name="mode"') }) },
    'POST /policies/:segment/preview': {
      allow: ADMINS,
      prepare: async () => ({
        url: '/policies/lgwan/preview',
        form: { mode: 'block', syncIntervalSeconds: '300', incidentContact: '' },
        happened: page('name="document"'),
      }),
    },
    'POST /policies/:segment/edit': {
      allow: ADMINS,
      prepare: async () => ({ url: '/policies/lgwan/edit', form: { document: policyDocument('lgwan') }, happened: page('CSIRT 内線 1234') }),
    },
    'POST /policies/:segment': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const before = await policyVersion('lgwan');
        return {
          url: '/policies/lgwan',
          form: { document: policyDocument('lgwan'), baseVersion: String(before) },
          happened: async () => expect(await policyVersion('lgwan')).toBe(before + 1),
        };
      },
    },
    'GET /policies/:segment/versions/:version': { allow: ADMINS, prepare: async () => ({ url: '/policies/mynumber/versions/1', happened: page('</html>') }) },
    'GET /exports': { allow: READERS, prepare: async () => ({ url: '/exports', happened: page('/exports/download') }) },
    'GET /exports/download': { allow: READERS, prepare: auditedRead('/exports/download?format=json&segment=', 'inventory.export', 'SOUMU') },
    'GET /users': { allow: ADMINS, prepare: async () => ({ url: '/users', happened: page('kansa') }) },
    'POST /users': {
      allow: ADMINS,
      prepare: async () => {
        const name = unique('shinki-');
        return {
          url: '/users',
          form: { username: name, role: 'auditor', password: PASSWORD, password2: PASSWORD },
          happened: async () => expect((await userRow(name))?.role).toBe('auditor'),
        };
      },
    },
    'POST /users/:name/role': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const name = await freshUser();
        return { url: `/users/${name}/role`, form: { role: 'admin' }, happened: async () => expect((await userRow(name))?.role).toBe('admin') };
      },
    },
    'POST /users/:name/password': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const name = await freshUser();
        const before = (await userRow(name))!.password_hash;
        return {
          url: `/users/${name}/password`,
          form: { password: 'a brand new long password' },
          happened: async () => expect((await userRow(name))!.password_hash).not.toBe(before),
        };
      },
    },
    'POST /users/:name/unlock': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const name = await freshUser();
        await db()
          .updateTable('admins')
          .set({ locked_until: new Date(clock.now().getTime() + 600_000).toISOString(), failed_logins: 5 })
          .where('username', '=', name)
          .execute();
        return { url: `/users/${name}/unlock`, form: {}, happened: async () => expect((await userRow(name))!.locked_until).toBeNull() };
      },
    },
    'POST /users/:name/token': {
      allow: ADMINS,
      prepare: async () => {
        const name = await freshUser();
        const before = (await userRow(name))!.api_token_hash;
        return { url: `/users/${name}/token`, form: {}, happened: async () => expect((await userRow(name))!.api_token_hash).not.toBe(before) };
      },
    },
    'POST /users/:name/delete': {
      allow: ADMINS,
      status: 303,
      prepare: async () => {
        const name = await freshUser();
        return { url: `/users/${name}/delete`, form: {}, happened: async () => expect(await userRow(name)).toBeUndefined() };
      },
    },
    'GET /audit': { allow: READERS, prepare: async () => ({ url: '/audit', happened: page('login') }) },
    'GET /audit/export.csv': { allow: READERS, prepare: auditedRead('/audit/export.csv', 'audit.export') },
  };

  /** The status a caller who may not do this gets, by the kind of route. */
  function deniedStatus(key: string, p: Principal): number {
    const url = key.split(' ')[1]!;
    if (url.startsWith('/api/v1/agents/')) return p === 'agentOther' ? 403 : 401;
    if (url.startsWith('/api/v1/admin/') || url === '/metrics') return p === 'auditor' ? 403 : 401;
    // The console: no valid session is sent to the login page; a role that may not is a 403 page.
    return p === 'auditor' || p === 'admin' ? 403 : 303;
  }

  /** Every table's rows, to compare before and after a denied request. */
  async function snapshot(): Promise<string> {
    const tables = [
      'agents',
      'enrollment_tokens',
      'events',
      'inventory_latest',
      'inventory_history',
      'policies',
      'keys',
      'admins',
      'audit_log',
      'incidents',
      'exceptions',
      'console_sessions',
    ] as const;
    const out: Record<string, unknown[]> = {};
    for (const t of tables) {
      const rows = (await db().selectFrom(t).selectAll().execute()) as Record<string, unknown>[];
      // Using an expired session deletes it; the matrix puts it back before each cell.
      out[t] = rows
        .filter((r) => t !== 'console_sessions' || r.id_hash !== expiredRow.id_hash)
        .map((r) => JSON.stringify(r))
        .sort();
    }
    return JSON.stringify(out);
  }

  async function request(key: string, p: Principal, prepared: Prepared) {
    const [method, pattern] = key.split(' ') as [string, string];
    const url = prepared.url.replace('AGENT', own.enrolled.agentId);
    const api = pattern.startsWith('/api/') || pattern === '/healthz' || pattern === '/metrics';
    const headers: Record<string, string> = {};
    const bearer = {
      agentOwn: own.enrolled.agentToken,
      agentOther: other.enrolled.agentToken,
      admin: tokens.admin,
      auditor: tokens.auditor,
      deletedUser: tokens.deletedUser,
      expiredSession: tokens.expiredSession,
      none: undefined,
    }[p];
    const session = prepared.session ?? (p === 'admin' || p === 'auditor' || p === 'deletedUser' || p === 'expiredSession' ? sessions[p] : undefined);
    if (api || p === 'agentOwn' || p === 'agentOther') {
      if (bearer) headers.authorization = `Bearer ${bearer}`;
    } else if (session) headers.cookie = session.cookie;
    if (prepared.extraCookie) headers.cookie = [headers.cookie, prepared.extraCookie].filter(Boolean).join('; ');
    let payload: string | undefined;
    if (prepared.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(prepared.body);
    } else if (prepared.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams({ _csrf: session?.csrf ?? '', ...prepared.form }).toString();
    }
    return collector.app.inject({ method: method as 'GET', url, headers, payload });
  }

  it.skipIf(skip)('has a row for every route the collector registers', async () => {
    const routes = await listRoutes(collector.app);
    const keys = routes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`);
    expect(
      keys.filter((k) => !TABLE[k]),
      'routes without a row',
    ).toEqual([]);
    expect(
      Object.keys(TABLE).filter((k) => !keys.includes(k)),
      'rows without a route',
    ).toEqual([]);
    // HEAD is fastify's own twin of each GET and answers as the GET does.
    expect(routes.filter((r) => r.method === 'HEAD' && !keys.includes(`GET ${r.url}`))).toEqual([]);
  });

  it.skipIf(skip)('every cell: allowed callers act, everyone else is refused and changes nothing', { timeout: 120_000 }, async () => {
    const cells: string[] = [];
    for (const [key, row] of Object.entries(TABLE)) {
      for (const p of PRINCIPALS) {
        // The expired session is put back as it was, so every cell sees a real expired session.
        await db()
          .deleteFrom('console_sessions')
          .where('id_hash', '=', expiredRow.id_hash as string)
          .execute();
        await db()
          .insertInto('console_sessions')
          .values(expiredRow as never)
          .execute();
        const prepared = await row.prepare(p);
        const allowed = row.allow.includes(p);
        const before = allowed ? '' : await snapshot();
        const res = await request(key, p, prepared);
        const want = allowed ? (typeof row.status === 'function' ? row.status(p) : (row.status ?? 200)) : deniedStatus(key, p);
        expect(res.statusCode, `${key} as ${p}: ${res.body.slice(0, 200)}`).toBe(want);
        if (allowed) await prepared.happened({ statusCode: res.statusCode, body: res.body, headers: res.headers });
        else {
          if (want === 303) expect(res.headers.location, `${key} as ${p}`).toMatch(/^\/login/);
          expect(await snapshot(), `${key} as ${p} changed something`).toBe(before);
        }
        cells.push(`${key} ${p} ${res.statusCode}`);
      }
    }
    expect(cells).toHaveLength(Object.keys(TABLE).length * PRINCIPALS.length);
  });
});
