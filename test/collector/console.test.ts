import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { resolveSession, IDLE_MINUTES, ABSOLUTE_HOURS, login } from '../../src/collector/console/auth';
import { CONSOLE_ROUTES, PAGE_ROLES, safeNext, zonedMidnight } from '../../src/collector/console/routes';
import { inert } from '../../src/collector/console/render';
import { createCollector, type Collector } from '../../src/collector/server';
import { verifyUnlockCode, type Policy } from '../../src/shared';
import { HOSTILE, seedFleet, type Call, type Seeded } from '../helpers/console-seed';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
if (ENGINES.includes('postgres') && !PG_URL) console.warn('console suite: PostgreSQL skipped (set MAMORI_TEST_PG_URL; CI always does)');

const PASSWORD = 'correct horse battery staple';

/** A browser stand-in for in-process requests: keeps cookies, submits forms with their CSRF token. */
class Client {
  cookies = new Map<string, string>();
  constructor(private collector: Collector) {}

  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await this.collector.app.inject({
      method,
      url,
      headers: {
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
      },
      payload: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const c of res.cookies as { name: string; value: string; maxAge?: number; expires?: Date }[]) {
      if (c.value === '' || c.maxAge === 0 || (c.expires && c.expires.getTime() < Date.now())) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return res;
  }

  get = (url: string) => this.request('GET', url);

  /** The CSRF token of the page at `url` (any form on it carries it). */
  async csrf(url = '/'): Promise<string> {
    const page = await this.get(url);
    const token = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
    if (!token) throw new Error(`no form on ${url} (${page.statusCode})`);
    return token;
  }

  /** Submits a form as the page would: with this session's token. */
  async post(url: string, form: Record<string, string> = {}, from = '/') {
    return this.request('POST', url, { _csrf: await this.csrf(from), ...form });
  }

  async login(username: string, password = PASSWORD) {
    const page = await this.get('/login');
    const nonce = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    return this.request('POST', '/login', { _csrf: nonce, username, password, next: '/' });
  }
}

describe.each(ENGINES)('console on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  let collector: Collector;
  let cleanup: () => Promise<void>;
  let seeded: Seeded;
  let admin: Client;
  let auditor: Client;

  beforeAll(async () => {
    if (skip) return;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-console-');
    cleanup = drop;
    collector = await createCollector({ db: url, logger: false });
    await addAdmin(collector.ctx.db, 'kanri', 'admin', PASSWORD);
    await addAdmin(collector.ctx.db, 'kansa', 'auditor', PASSWORD);
    const call: Call = async (method, u, opts = {}) => {
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
    seeded = await seedFleet(call, (segment) => createEnrollmentToken(collector.ctx.db, { segment, ttlMs: 3_600_000, uses: 1 }));
    admin = new Client(collector);
    auditor = new Client(collector);
    expect((await admin.login('kanri')).statusCode).toBe(303);
    expect((await auditor.login('kansa')).statusCode).toBe(303);
  });
  afterAll(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  const auditActions = async () =>
    (await collector.ctx.db.selectFrom('audit_log').select(['action', 'actor', 'target', 'address']).orderBy('id').execute()).map((r) => r);

  it.skipIf(skip)('sends a page without a session to the login form and back after logging in', async () => {
    const anon = new Client(collector);
    const res = await anon.get('/terminals?segment=lgwan');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2Fterminals%3Fsegment%3Dlgwan');
    const page = await anon.get(res.headers.location as string);
    expect(page.body).toContain('name="next" value="/terminals?segment=lgwan"');
    const nonce = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const done = await anon.request('POST', '/login', { _csrf: nonce, username: 'kanri', password: PASSWORD, next: '/terminals?segment=lgwan' });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe('/terminals?segment=lgwan');
    const cookie = (done.cookies as { name: string; httpOnly?: boolean; sameSite?: string }[]).find((c) => c.name === 'mamori_sid')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    // The session is a row in the database (several collectors share it) holding only a hash.
    const rows = await collector.ctx.db.selectFrom('console_sessions').select(['id_hash', 'username']).execute();
    expect(rows.some((r) => r.id_hash === anon.cookies.get('mamori_sid'))).toBe(false);
    expect((await anon.get('/terminals?segment=lgwan')).body).toContain('LGWAN-PC101');
    // A next that leaves the site is ignored.
    for (const evil of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) expect(safeNext(evil)).toBe('/');
  });

  it.skipIf(skip)('says a wrong password plainly, locks after five in a row, and audits every attempt with its address', async () => {
    await addAdmin(collector.ctx.db, 'tanaka', 'auditor', PASSWORD);
    const c = new Client(collector);
    for (let i = 0; i < 4; i++) {
      const res = await c.login('tanaka', 'wrong password!');
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain('ユーザー名またはパスワードが正しくありません。');
    }
    const fifth = await c.login('tanaka', 'wrong password!');
    expect(fifth.body).toContain('ロックされています');
    // Locked: even the right password is refused until an admin unlocks or time passes.
    expect((await c.login('tanaka')).statusCode).toBe(401);
    const nul = await c.login('kan\u0000ri', 'whatever it is');
    expect(nul.statusCode).toBe(400);
    const unknown = await c.login('nobody', 'whatever it is');
    expect(unknown.body).toContain('ユーザー名またはパスワードが正しくありません。');
    const audit = (await auditActions()).filter((a) => a.target === 'tanaka' || a.target === 'nobody');
    expect(audit.map((a) => a.action)).toEqual([
      'login.failed',
      'login.failed',
      'login.failed',
      'login.failed',
      'login.locked',
      'login.failed',
      'login.failed',
    ]);
    expect(audit.every((a) => a.address === '127.0.0.1')).toBe(true);
    // The admin unlocks on the users page; the next login works.
    expect((await admin.post('/users/tanaka/unlock', {}, '/users')).statusCode).toBe(303);
    expect((await c.login('tanaka')).statusCode).toBe(303);
  });

  it.skipIf(skip)('ends sessions that idle too long or grow too old', async () => {
    const result = await login(collector.ctx.db, { username: 'kanri', password: PASSWORD, address: '127.0.0.1', userAgent: 'test' });
    if (!result.ok) throw new Error('login failed');
    const at = Date.now();
    expect(await resolveSession(collector.ctx.db, result.sessionId, new Date(at + (IDLE_MINUTES - 1) * 60_000))).not.toBeNull();
    // Used a minute before idling out, it slides; past the absolute limit it ends whatever the use.
    expect(await resolveSession(collector.ctx.db, result.sessionId, new Date(at + (IDLE_MINUTES + 20) * 60_000))).not.toBeNull();
    expect(await resolveSession(collector.ctx.db, result.sessionId, new Date(at + ABSOLUTE_HOURS * 3_600_000 + 1000))).toBeNull();
    expect(await resolveSession(collector.ctx.db, result.sessionId)).toBeNull();
  });

  it.skipIf(skip)('refuses a form without its token or from another site, and changes nothing', async () => {
    const id = seeded.requests[2]!.id;
    const noToken = await admin.request('POST', `/exceptions/${id}/approve`, { minutes: '60' });
    expect(noToken.statusCode).toBe(403);
    expect(noToken.body).toContain('フォームの有効期限が切れました');
    const token = await admin.csrf('/exceptions');
    const crossSite = await admin.request('POST', `/exceptions/${id}/approve`, { _csrf: token, minutes: '60' }, { origin: 'http://evil.example' });
    expect(crossSite.statusCode).toBe(403);
    const row = await collector.ctx.db.selectFrom('exceptions').select('status').where('request_id', '=', id).executeTakeFirstOrThrow();
    expect(row.status).toBe('pending');
  });

  it.skipIf(skip)('enforces the roles on every route: an auditor reads, changes nothing, and is never sent to log in', async () => {
    const t = seeded.byHost('SOUMU-PC001');
    const fill = (url: string) =>
      url
        .replace(':id', url.startsWith('/terminals') ? t.enrolled.agentId : url.startsWith('/incidents') ? seeded.incidentReceipts[0]! : seeded.requests[0]!.id)
        .replace(':segment', 'mynumber')
        .replace(':version', '1')
        .replace(':name', 'kanri');
    const token = await auditor.csrf('/terminals');
    const before = await collector.ctx.db.selectFrom('policies').select('version').execute();
    for (const r of CONSOLE_ROUTES) {
      const url = fill(r.url);
      const res =
        r.method === 'GET'
          ? await auditor.get(url)
          : await auditor.request('POST', url, {
              _csrf: token,
              minutes: '60',
              status: 'closed',
              role: 'auditor',
              password: 'x'.repeat(20),
              document: '{}',
              baseVersion: '1',
              requestCode: seeded.requests[0]!.requestCode,
            });
      expect([200, 403], `${r.method} ${r.url} → ${res.statusCode}`).toContain(res.statusCode);
      const allowed = (PAGE_ROLES[r.page] as readonly string[]).includes('auditor');
      expect(collector.app.hasRoute({ method: r.method, url: r.url }), `${r.method} ${r.url} is served`).toBe(true);
      expect(res.statusCode, `${r.method} ${r.url}`).toBe(allowed ? 200 : 403);
      if (res.statusCode === 403) expect(res.body).toContain('この操作の権限がありません');
    }
    expect(await collector.ctx.db.selectFrom('policies').select('version').execute()).toEqual(before);
    const incident = await collector.ctx.db
      .selectFrom('incidents')
      .select('status')
      .where('receipt', '=', seeded.incidentReceipts[0]!)
      .executeTakeFirstOrThrow();
    expect(incident.status).toBe('new');
    // The navigation offers an auditor only what it may open.
    const nav = (await auditor.get('/')).body;
    expect(nav).toContain('href="/exports"');
    expect(nav).not.toContain('href="/policies"');
    expect(nav).not.toContain('href="/users"');
  });

  it.skipIf(skip)('shows hostile strings from terminals as text on every page', async () => {
    const zeimu = seeded.byHost('ZEIMU-PC014');
    const hostile = seeded.byHost(seeded.hostileHost);
    const pages = [
      '/',
      '/terminals',
      `/terminals/${zeimu.enrolled.agentId}`,
      `/terminals/${hostile.enrolled.agentId}`,
      '/incidents',
      `/incidents/${seeded.incidentReceipts[1]}`,
      '/exceptions',
      '/audit',
      '/exports',
      '/policies/mynumber',
    ];
    for (const url of pages) {
      const res = await admin.get(url);
      expect(res.statusCode, url).toBe(200);
      // Only our own script tag, no element or attribute from a terminal.
      expect(res.body.match(/<script/g), url).toHaveLength(1);
      expect(res.body, url).not.toContain('<img src=x');
      expect(res.body, url).not.toMatch(/onerror="window/);
      expect(res.body, url).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u202e]/);
    }
    const detail = (await admin.get(`/terminals/${zeimu.enrolled.agentId}`)).body;
    expect(detail).toContain('=HYPERLINK(&quot;http://evil.example/&quot;,&quot;click me&quot;) &lt;script>window.__xss=1&lt;/script>');
    const incident = (await admin.get(`/incidents/${seeded.incidentReceipts[1]}`)).body;
    expect(incident).toContain('bell[U+0007]esc[U+001B][31mred');
    expect(incident).toContain('report[U+202E]gnp.exe');
    expect(inert('a\u0000b\u007fc\u2066d')).toBe('a[U+0000]b[U+007F]c[U+2066]d');
    const list = (await admin.get('/terminals')).body;
    expect(list).toContain('&lt;img src=x onerror=&quot;window.__xss=2&quot;>pc');
    expect((await admin.get('/terminals')).headers['content-security-policy']).toContain("script-src 'self'");
  });

  it.skipIf(skip)('shows the fleet on the dashboard: segments, online, degraded, blocks over 7 days, incidents, broken chains', async () => {
    const body = (await admin.get('/')).body;
    const stat = (label: string) => Number(new RegExp(`<span class="stat-value">(\\d+)</span><span class="stat-label">${label}</span>`).exec(body)?.[1]);
    expect(stat('登録端末')).toBe(8);
    expect(stat('オンライン')).toBe(8);
    expect(stat('保護機能が一部停止')).toBe(1);
    expect(stat('ログの完全性に異常のある端末')).toBe(1);
    expect(body).toContain('KOSEKI-PC003');
    // 4 mynumber terminals × 5 blocks in the window + 2 lgwan × 2 (the 8-day-old ones are outside).
    const table = /<table class="sr-only" id="blocked-by-day">([\s\S]*?)<\/table>/.exec(body)![1]!;
    const cells = [...table.matchAll(/<td>(\d+)<\/td>/g)].map((m) => Number(m[1]));
    expect(cells.reduce((a, b) => a + b, 0)).toBe(4 * 5 + 2 * 2);
    expect(body).toContain('合計 24 件');
  });

  it.skipIf(skip)('finds terminals by name, address and state, and pages through them', async () => {
    const names = (html: string) => [...html.matchAll(/<th scope="row"><a href="\/terminals\/[^"]+" class="untrusted">([^<]+)<\/a>/g)].map((m) => m[1]);
    expect(names((await admin.get('/terminals?q=lgwan')).body)).toEqual(['LGWAN-PC101', 'LGWAN-PC102']);
    expect(names((await admin.get('/terminals?segment=internet')).body)).toEqual(['NET-PC201', 'NET-PC202']);
    expect(names((await admin.get('/terminals?state=degraded')).body)).toEqual(['LGWAN-PC102']);
    expect(names((await admin.get('/terminals?state=chain_broken')).body)).toEqual(['KOSEKI-PC003']);
    expect((await admin.get('/terminals?q=10.10.1.21')).body).toContain('全 8 件');
    expect((await admin.get('/terminals?q=%25')).body).toContain('該当するものはありません');
    expect((await admin.get('/terminals?state=bogus&page=-4')).statusCode).toBe(200);
  });

  it.skipIf(skip)('shows a terminal with its inventory, USB history, events and chain, and audits the read', async () => {
    const t = seeded.byHost('SOUMU-PC001');
    const body = (await admin.get(`/terminals/${t.enrolled.agentId}`)).body;
    for (const text of [
      'ESPRIMO D7012/M',
      'Core i5-13500',
      '16 GB',
      'KIOXIA EXCERIA',
      '10.10.1.21',
      '0781:5581',
      'ブロックしました',
      'yamada.taro',
      'ログの完全性: 正常',
    ])
      expect(body).toContain(text);
    const logons = (await admin.get(`/terminals/${t.enrolled.agentId}?type=login.failure`)).body;
    expect(logons).toContain('bad password');
    expect(logons).not.toContain('画面ロック</td>');
    const views = (await auditActions()).filter((a) => a.action === 'terminal.view' && a.target === t.enrolled.agentId);
    expect(views.length).toBeGreaterThanOrEqual(2);
    const verified = await admin.post(`/terminals/${t.enrolled.agentId}/verify`, {}, `/terminals/${t.enrolled.agentId}`);
    expect(verified.body).toContain(`検証しました: seq 1–${t.last.seq} のハッシュチェーンは正常です。`);
    // A stored event altered in the database is found by the re-verification and flagged.
    await collector.ctx.db
      .updateTable('events')
      .set({ payload: JSON.stringify({ user: 'someone-else', source: 'security-log', logonType: 2 }) })
      .where('agent_id', '=', t.enrolled.agentId)
      .where('type', '=', 'login.success')
      .execute();
    const tampered = await admin.post(`/terminals/${t.enrolled.agentId}/verify`, {}, `/terminals/${t.enrolled.agentId}`);
    expect(tampered.body).toMatch(/seq \d+ でハッシュチェーンが一致しません（hash_mismatch）/);
    expect((await admin.get('/terminals?state=chain_broken')).body).toContain('SOUMU-PC001');
    expect((await admin.get('/terminals/no-such-terminal')).statusCode).toBe(404);
  });

  it.skipIf(skip)('moves an incident through its workflow and records who did it', async () => {
    const receipt = seeded.incidentReceipts[2]!;
    const page = await admin.get(`/incidents/${receipt}`);
    expect(page.body).toContain('外出先で USB メモリ');
    expect(page.body).toContain('対応中にする');
    const moved = await admin.post(`/incidents/${receipt}/status`, { status: 'investigating' }, `/incidents/${receipt}`);
    expect(moved.statusCode).toBe(303);
    const after = await admin.get(`/incidents/${receipt}`);
    expect(after.body).toContain(`インシデント ${receipt} を「対応中」にしました。`);
    expect(after.body).toContain('完了にする');
    expect(after.body).not.toContain('対応中にする');
    expect((await auditActions()).some((a) => a.action === 'incident.status' && a.target === receipt && a.actor === 'kanri')).toBe(true);
  });

  it.skipIf(skip)('approves and denies requests, and answers a request code by phone with an unlock code the terminal accepts', async () => {
    const [first, second, third] = seeded.requests;
    expect((await admin.post(`/exceptions/${first!.id}/approve`, { minutes: '240' }, '/exceptions')).statusCode).toBe(303);
    const row = await collector.ctx.db.selectFrom('exceptions').selectAll().where('request_id', '=', first!.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'approved', decided_by: 'kanri' });
    expect(Date.parse(row.expires_at!) - Date.parse(row.decided_at!)).toBe(240 * 60_000);
    const page = (await admin.get('/exceptions')).body;
    expect(page).toContain('を承認しました');
    expect((await admin.post(`/exceptions/${second!.id}/deny`, {}, '/exceptions')).statusCode).toBe(303);
    expect((await admin.post(`/exceptions/${second!.id}/approve`, { minutes: '60' }, '/exceptions')).statusCode).toBe(400);
    const unlocked = await admin.post('/exceptions/unlock', { requestCode: third!.requestCode.toLowerCase(), minutes: '120' }, '/exceptions');
    expect(unlocked.statusCode).toBe(200);
    const code = /<output class="secret">([^<]+)<\/output>/.exec(unlocked.body)![1]!;
    const stick = { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' };
    expect(verifyUnlockCode(third!.terminal.enrolled.unlockSecret, third!.requestCode, code, stick)).toBe(120);
    const wrong = await admin.post('/exceptions/unlock', { requestCode: 'not-a-code', minutes: '60' }, '/exceptions');
    expect(wrong.statusCode).toBe(400);
  });

  it.skipIf(skip)('shows the exact device an approver decides on, not "—" (an exception could cover a whole vendor)', async () => {
    const [, , third] = seeded.requests;
    const page = (await admin.get('/exceptions')).body;
    expect(page).toContain('0781:5581 serial 4C530001230101109473');
    const unlocked = await admin.post('/exceptions/unlock', { requestCode: third!.requestCode, minutes: '60' }, '/exceptions');
    expect(unlocked.body).toContain('機器 0781:5581 serial 4C530001230101109473');
    // A device other than the synced request's is refused, not issued for.
    const other = await admin.post('/exceptions/unlock', { requestCode: third!.requestCode, minutes: '60', device: '0781:5581 serial OTHER' }, '/exceptions');
    expect(other.statusCode).toBe(400);
    expect(other.body).not.toContain('<output class="secret">');
    expect((await auditActions()).map((a) => a.action)).toEqual(expect.arrayContaining(['exception.approve', 'exception.deny', 'unlock', 'exceptions.read']));
  });

  it.skipIf(skip)('edits a policy: field errors, a preview of the change, a signed new version, and no lost update', async () => {
    const bad = await admin.post(
      '/policies/lgwan/preview',
      {
        mode: 'readonly',
        syncIntervalSeconds: '5',
        incidentContact: '',
        'allow.0.vendorId': 'zz12',
        'allow.0.productId': '5581',
        'allow.0.serial': '',
        'allow.0.note': '',
      },
      '/policies/lgwan',
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('16 進数 4 桁で入力してください');
    expect(bad.body).toContain('10 から 86400 までの整数');
    expect(bad.body).toContain('value="zz12"');
    const preview = await admin.post(
      '/policies/lgwan/preview',
      {
        mode: 'block',
        syncIntervalSeconds: '120',
        incidentContact: '情報政策課 CSIRT 内線 1234',
        'allow.0.vendorId': '0781',
        'allow.0.productId': '5581',
        'allow.0.serial': '4C530001230101109473',
        'allow.0.note': '総務課 配布用',
        'allow.1.vendorId': '',
        'allow.1.productId': '',
      },
      '/policies/lgwan',
    );
    expect(preview.statusCode).toBe(200);
    expect(preview.body).toContain('外部記録媒体: 読み取り専用 → 使用禁止');
    expect(preview.body).toContain('許可リストに追加: 0781:5581 S/N 4C530001230101109473 — 総務課 配布用');
    expect(preview.body).toContain('同期間隔: 300 秒 → 120 秒');
    expect(preview.body).toContain('端末 2 台');
    const document = /name="document" value="([^"]+)"/
      .exec(preview.body)![1]!
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
    const applied = await admin.post('/policies/lgwan', { document, baseVersion: '1' }, '/policies/lgwan');
    expect(applied.statusCode).toBe(303);
    const policy = (
      await collector.app.inject({
        method: 'GET',
        url: `/api/v1/agents/${seeded.byHost('LGWAN-PC101').enrolled.agentId}/policy`,
        headers: { authorization: `Bearer ${seeded.byHost('LGWAN-PC101').enrolled.agentToken}` },
      })
    ).json() as Policy;
    expect(policy).toMatchObject({
      version: 2,
      removableMedia: { mode: 'block', allow: [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473', note: '総務課 配布用' }] },
      syncIntervalSeconds: 120,
    });
    const edit = (await admin.get('/policies/lgwan')).body;
    expect(edit).toContain('LGWAN 接続系 のポリシーを v2 として署名し、適用しました。');
    expect(edit).toContain('/policies/lgwan/versions/2');
    // A review made against v1 is refused once v2 exists: nobody overwrites a change unseen.
    const stale = await admin.post('/policies/lgwan', { document, baseVersion: '1' }, '/policies/lgwan');
    expect(stale.statusCode).toBe(409);
    expect(stale.body).toContain('ほかの管理者がこの区分のポリシーを v2 に更新しました');
    const change = (await collector.ctx.db.selectFrom('audit_log').selectAll().where('action', '=', 'policy.change').execute()).at(-1)!;
    expect(JSON.parse(change.detail)).toMatchObject({
      fromVersion: 1,
      toVersion: 2,
      before: { removableMedia: { mode: 'readonly' } },
      after: { removableMedia: { mode: 'block' } },
    });
    const version = (await admin.get('/policies/lgwan/versions/2')).body;
    expect(version).toContain('外部記録媒体: 読み取り専用 → 使用禁止');
    // From a terminal's device list: the stick comes prefilled into a new allowlist row.
    const prefilled = (await admin.get('/policies/mynumber?addVendor=0781&addProduct=5581&addSerial=ABC%3Cb%3E')).body;
    expect(prefilled).toContain('value="ABC&lt;b>"');
  });

  it.skipIf(skip)('exports the ledger from the console with the session, audited under the user', async () => {
    const res = await admin.get('/exports/download?format=csv&segment=mynumber&lang=en');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/filename\*=UTF-8''ledger_\d{8}\.csv/);
    const rows = parseCsv(res.body.replace(/^\ufeff/, ''), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.hostname).sort()).toEqual([seeded.hostileHost, 'KOSEKI-PC003', 'SOUMU-PC001', 'ZEIMU-PC014'].sort());
    const zeimu = rows.find((r) => r.hostname === 'ZEIMU-PC014')!;
    // A cell a spreadsheet would run as a formula starts with an apostrophe; the rest is kept as is.
    expect(zeimu.last_user).toBe(`'${HOSTILE.formula}`);
    expect(zeimu.usb_devices).toContain(HOSTILE.script);
    expect((await auditActions()).some((a) => a.action === 'inventory.export' && a.actor === 'kanri' && a.target === 'mynumber')).toBe(true);
    const auditCsv = await admin.get('/audit/export.csv?action=inventory.export');
    expect(auditCsv.statusCode).toBe(200);
    const auditRows = parseCsv(auditCsv.body.replace(/^\ufeff/, ''), { columns: true }) as Record<string, string>[];
    expect(auditRows.some((r) => r['操作者'] === 'kanri' && r['操作'] === 'inventory.export')).toBe(true);
  });

  it.skipIf(skip)('manages users: a new user sees its token once, a role change ends its sessions, nobody removes the last admin', async () => {
    const added = await admin.post(
      '/users',
      { username: 'sato', role: 'auditor', password: 'another long password', password2: 'another long password' },
      '/users',
    );
    expect(added.statusCode).toBe(200);
    const token = /<output class="secret">(mam_[^<]+)<\/output>/.exec(added.body)![1]!;
    const api = await collector.app.inject({ method: 'GET', url: '/api/v1/admin/terminals', headers: { authorization: `Bearer ${token}` } });
    expect(api.statusCode).toBe(200);
    expect(
      (await admin.post('/users', { username: 'sato', role: 'admin', password: 'another long password', password2: 'another long password' }, '/users')).body,
    ).toContain('already exists');
    const sato = new Client(collector);
    expect((await sato.login('sato', 'another long password')).statusCode).toBe(303);
    expect((await sato.get('/policies')).statusCode).toBe(403);
    expect((await admin.post('/users/sato/role', { role: 'admin' }, '/users')).statusCode).toBe(303);
    expect((await sato.get('/policies')).statusCode).toBe(303);
    expect((await sato.login('sato', 'another long password')).statusCode).toBe(303);
    expect((await sato.get('/policies')).statusCode).toBe(200);
    expect((await admin.post('/users/kanri/delete', {}, '/users')).body).toContain('you cannot delete your own account');
    expect((await admin.post('/users/sato/delete', {}, '/users')).statusCode).toBe(303);
    expect((await admin.post('/users/kanri/role', { role: 'auditor' }, '/users')).body).toContain('the last administrator must stay an administrator');
    const actions = (await auditActions()).filter((a) => a.action.startsWith('user.')).map((a) => `${a.action} ${a.target}`);
    expect(actions).toEqual(expect.arrayContaining(['user.add sato', 'user.role sato', 'user.delete sato']));
  });

  it.skipIf(skip)('switches to English and back, and logs out for good', async () => {
    const c = new Client(collector);
    await c.login('kansa');
    expect((await c.get('/lang/en?next=/incidents')).headers.location).toBe('/incidents');
    const en = (await c.get('/incidents')).body;
    expect(en).toContain('<html lang="en">');
    expect(en).toContain('suspected malware or ransomware');
    await c.get('/lang/ja?next=/');
    expect((await c.get('/')).body).toContain('<html lang="ja">');
    const sid = c.cookies.get('mamori_sid')!;
    expect((await c.post('/logout', {}, '/')).headers.location).toBe('/login');
    c.cookies.set('mamori_sid', sid);
    expect((await c.get('/')).statusCode).toBe(303);
    expect(zonedMidnight('2026-11-25', 'Asia/Tokyo')).toBe('2026-11-24T15:00:00.000Z');
  });
});
