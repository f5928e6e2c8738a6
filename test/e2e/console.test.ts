import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_ROUTES, PAGE_ROLES } from '../../src/collector/console/routes';
import { verifyUnlockCode, type Policy } from '../../src/shared';
import { HOSTILE, fetchCall, seedFleet, type Seeded } from '../helpers/console-seed';
import { ROOT, freePort, launchChromium, mamori, requireBuild, startCollector, startMamori, waitFor, type Running, type TestCollector } from './helpers';

const SHOTS = path.join(ROOT, 'test-output', 'console');
const PASSWORD = 'correct horse battery staple';

let dir: string;
let collector: TestCollector;
let seeded: Seeded;
let browser: Browser;
let adminContext: BrowserContext;
let page: Page;
/** Every dialog any page opened: only our own confirmations may appear. */
const dialogs: string[] = [];
/** Script errors and CSP violations reported by any page. */
const pageErrors: string[] = [];

function watch(p: Page): Page {
  p.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
  p.on('pageerror', (e) => pageErrors.push(e.message));
  // A refused page (403 for the auditor) is logged by Chromium as a failed load: that is expected;
  // failures of the server are tracked by their responses instead.
  p.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
  });
  p.on('response', (r) => {
    if (r.status() >= 500) pageErrors.push(`${r.status()} ${r.url()}`);
  });
  return p;
}

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Opens a console page and checks nothing a terminal sent ran as script there. */
async function open(p: Page, url: string, status = 200): Promise<void> {
  const res = await p.goto(`${collector.url}${url}`);
  expect(res?.status(), url).toBe(status);
  expect(await p.evaluate(() => (window as unknown as { __xss?: number }).__xss), url).toBeUndefined();
}

async function logIn(context: BrowserContext, username: string): Promise<Page> {
  const p = watch(await context.newPage());
  await p.goto(`${collector.url}/`);
  expect(new URL(p.url()).pathname).toBe('/login');
  await p.fill('#username', username);
  await p.fill('#password', PASSWORD);
  await Promise.all([p.waitForURL(`${collector.url}/`), p.click('button[type=submit].primary')]);
  return p;
}

beforeAll(async () => {
  requireBuild();
  fs.mkdirSync(SHOTS, { recursive: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-console-'));
  collector = await startCollector(path.join(dir, 'collector'));
  const added = await mamori(['collector', 'admin', 'add', 'kansa', '--role', 'auditor', '--data-dir', collector.data], { MAMORI_ADMIN_PASSWORD: PASSWORD });
  expect(added.code).toBe(0);
  seeded = await seedFleet(fetchCall(collector.url), (segment) => collector.token(segment));
  browser = await launchChromium();
  adminContext = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'ja-JP', timezoneId: 'Asia/Tokyo', acceptDownloads: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await collector?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the admin console in Chromium', () => {
  it('an admin logs in and sees the fleet on the dashboard', async () => {
    const login = watch(await adminContext.newPage());
    await open(login, '/login');
    await shot(login, 'ja-00-login');
    await login.close();
    page = await logIn(adminContext, 'kanri');
    await expect.poll(() => page.locator('.stat').first().innerText()).toContain('8');
    expect(await page.locator('#blocked-by-day').count()).toBe(1);
    expect(await page.locator('svg.bars rect.bar').count()).toBeGreaterThan(0);
    expect(await page.locator('main').innerText()).toContain('KOSEKI-PC003');
    await shot(page, 'ja-01-dashboard');
  });

  it('finds a terminal and shows its inventory, USB history and events, hostile strings as text', async () => {
    await open(page, '/terminals');
    await page.fill('#f-q', 'zeimu');
    await Promise.all([page.waitForURL(/q=zeimu/), page.click('form.filters button[type=submit]')]);
    const rows = page.locator('#terminals tbody tr');
    expect(await rows.count()).toBe(1);
    await Promise.all([page.waitForURL(/\/terminals\/[0-9a-f-]{36}$/), rows.first().locator('a').click()]);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    const usb = await page.locator('#usb-now').innerText();
    expect(usb).toContain(`SanDisk ${HOSTILE.formula} ${HOSTILE.script}`);
    expect(usb).toContain(HOSTILE.plus);
    const events = await page.locator('#events').innerText();
    expect(events).toContain(HOSTILE.formula);
    expect(events).toContain('ブロックしました');
    await shot(page, 'ja-03-terminal');
    await open(page, '/terminals');
    expect(await page.locator('#terminals').innerText()).toContain(seeded.hostileHost);
    await shot(page, 'ja-02-terminals');
  });

  it('shows an incident with its context and moves it along the workflow', async () => {
    await open(page, '/incidents');
    await shot(page, 'ja-04-incidents');
    await Promise.all([page.waitForURL(/INC-20261125-X7Z2PL/), page.click('a[href$=":INC-20261125-X7Z2PL"]')]);
    const text = await page.locator('#incident-description').innerText();
    expect(text).toContain(HOSTILE.script);
    expect(text).toContain(HOSTILE.img);
    expect(text).toContain('bell[U+0007]esc[U+001B][31mred');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("対応中にする")')]);
    expect(await page.locator('.flash.ok').innerText()).toContain('「対応中」にしました');
    await shot(page, 'ja-05-incident');
  });

  it('approves one request for four hours, denies another, and issues an unlock code a terminal accepts', async () => {
    await open(page, '/exceptions');
    await shot(page, 'ja-06-exceptions');
    const [first, second, third] = seeded.requests;
    const row = page.locator(`tr[data-request="${first!.id}"]`);
    await row.locator('select[name=minutes]').selectOption('240');
    await Promise.all([page.waitForURL(`${collector.url}/exceptions`), row.locator('button:has-text("承認")').click()]);
    expect(await page.locator('.flash.ok').innerText()).toContain('を承認しました');
    await Promise.all([page.waitForURL(`${collector.url}/exceptions`), page.locator(`tr[data-request="${second!.id}"] button:has-text("却下")`).click()]);
    expect(dialogs).toContain('却下');
    const listed = await collector.api<{ id: string; status: string; minutes: number; expiresAt: string; decidedAt: string }[]>('/api/v1/admin/exceptions');
    const approved = listed.body.find((e) => e.id === first!.id)!;
    expect(approved.status).toBe('approved');
    expect(Date.parse(approved.expiresAt) - Date.parse(approved.decidedAt)).toBe(4 * 3_600_000);
    expect(listed.body.find((e) => e.id === second!.id)!.status).toBe('denied');

    await page.fill('#request-code', third!.requestCode);
    await page.selectOption('#unlock-minutes', '120');
    await page.click('button:has-text("許可コードを発行")');
    const code = await page.locator('output.secret').innerText();
    expect(
      verifyUnlockCode(third!.terminal.enrolled.unlockSecret, third!.requestCode, code, {
        vendorId: '0781',
        productId: '5581',
        serial: '4C530001230101109473',
      }),
    ).toBe(120);
    await shot(page, 'ja-07-unlock-code');
  });

  it('changes a policy with a preview of what changes, and agents get the new signed version', async () => {
    await open(page, '/policies');
    await shot(page, 'ja-08-policies');
    await Promise.all([page.waitForURL(/\/policies\/mynumber$/), page.click('a.button-link[href="/policies/mynumber"]')]);
    const before = await page.locator('#allowlist tbody tr').count();
    await page.click('button.add-row');
    expect(await page.locator('#allowlist tbody tr').count()).toBe(before + 1);
    await page.fill('input[name="allow.0.vendorId"]', '0781');
    await page.fill('input[name="allow.0.productId"]', '5581');
    await page.fill('input[name="allow.0.serial"]', '4C530001230101109473');
    await page.fill('input[name="allow.0.note"]', '総務課 配布用（管理番号 12）');
    await page.fill('#incidentContact', '情報政策課 CSIRT 内線 1234');
    await shot(page, 'ja-09-policy-edit');
    await page.click('button:has-text("変更内容を確認")');
    const changes = await page.locator('#changes').innerText();
    expect(changes).toContain('許可リストに追加: 0781:5581 S/N 4C530001230101109473 — 総務課 配布用（管理番号 12）');
    expect(changes).toContain('連絡先: 「」→「情報政策課 CSIRT 内線 1234」');
    await shot(page, 'ja-10-policy-preview');
    await Promise.all([page.waitForURL(/\/policies\/mynumber$/), page.click('button:has-text("この内容で適用する")')]);
    expect(await page.locator('.flash.ok').innerText()).toContain('v2 として署名し、適用しました');
    const agent = seeded.byHost('SOUMU-PC001').enrolled;
    const res = await fetch(`${collector.url}/api/v1/agents/${agent.agentId}/policy`, { headers: { authorization: `Bearer ${agent.agentToken}` } });
    const policy = (await res.json()) as Policy;
    expect(policy).toMatchObject({
      version: 2,
      removableMedia: { mode: 'block', allow: [{ vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }] },
      incidentContact: '情報政策課 CSIRT 内線 1234',
    });
    await open(page, '/policies/mynumber/versions/2');
    await shot(page, 'ja-11-policy-version');
  });

  it('downloads the ledger as XLSX, CSV and JSON, each with every terminal and hostile strings inert', async () => {
    await open(page, '/exports');
    const download = async (format: string, segment = '') => {
      await page.selectOption('#f-format', format);
      await page.selectOption('#f-segment', segment);
      const [file] = await Promise.all([page.waitForEvent('download'), page.click('#export-form button[type=submit]')]);
      const target = path.join(dir, file.suggestedFilename());
      await file.saveAs(target);
      return { name: file.suggestedFilename(), target };
    };
    const xlsx = await download('xlsx');
    expect(xlsx.name).toMatch(/^端末台帳_\d{8}\.xlsx$/);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.readFile(xlsx.target);
    const sheet = workbook.worksheets[0]!;
    expect(sheet.getRow(1).getCell(2).value).toBe('ホスト名');
    const hosts: string[] = [];
    sheet.eachRow((row, n) => {
      if (n > 1) hosts.push(String(row.getCell(2).value));
      row.eachCell((cell) => expect(cell.formula, `row ${n}`).toBeUndefined());
    });
    expect(hosts.sort()).toEqual(seeded.terminals.map((t) => t.hostname).sort());
    const zeimuRow = sheet.getRows(2, sheet.rowCount - 1)!.find((r) => r.getCell(2).value === 'ZEIMU-PC014')!;
    expect(zeimuRow.getCell(15).value).toBe(`'${HOSTILE.formula}`);
    expect(zeimuRow.getCell(16).value).toBeInstanceOf(Date);

    const csv = await download('csv', 'lgwan');
    const rows = parseCsv(fs.readFileSync(csv.target, 'utf8').replace(/^\ufeff/, ''), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r['ホスト名']).sort()).toEqual(['LGWAN-PC101', 'LGWAN-PC102']);

    // The same ledger from the command line, as a script at the town hall would fetch it.
    const cli = path.join(dir, 'cli-ledger.xlsx');
    const run = await mamori(['export', 'inventory', '--collector', collector.url, '--format', 'xlsx', '--segment', 'mynumber', '-o', cli], {
      MAMORI_ADMIN_TOKEN: collector.admin,
    });
    expect(run.code, run.stderr).toBe(0);
    const fromCli = new ExcelJS.Workbook();
    await fromCli.xlsx.readFile(cli);
    expect(fromCli.worksheets[0]!.rowCount).toBe(1 + seeded.terminals.filter((t) => t.segment === 'mynumber').length);

    const json = await download('json');
    const ledger = JSON.parse(fs.readFileSync(json.target, 'utf8')) as { hostname: string }[];
    expect(ledger).toHaveLength(seeded.terminals.length);
    await open(page, '/exports');
    expect(await page.locator('main').innerText()).toContain('JSON');
    await shot(page, 'ja-12-exports');
  });

  it('adds a user whose token is shown once', async () => {
    await open(page, '/users');
    await page.fill('#new-username', 'sato');
    await page.selectOption('#new-role', 'auditor');
    await page.fill('#new-password', 'another long password');
    await page.fill('#new-password2', 'another long password');
    await page.click('button:has-text("ユーザーを追加")');
    const token = await page.locator('output.secret').innerText();
    expect(token).toMatch(/^mam_/);
    const res = await fetch(`${collector.url}/api/v1/admin/terminals`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await open(page, '/users');
    expect(await page.locator('main').innerText()).not.toContain(token);
    await shot(page, 'ja-13-users');
  });

  it('records every action in the audit log with who and from where', async () => {
    await open(page, '/audit');
    const text = await page.locator('#audit').innerText();
    for (const action of [
      'ログイン',
      '台帳の出力',
      'ポリシーの変更',
      '利用申請の承認',
      '利用申請の却下',
      '許可コードの発行',
      'インシデントの状態変更',
      'ユーザーの追加',
      '端末詳細の閲覧',
    ])
      expect(text, action).toContain(action);
    expect(text).toContain('127.0.0.1');
    await shot(page, 'ja-14-audit');
  });

  it('serves the same session from a second collector on the same database', async () => {
    const port = await freePort();
    const second: Running = startMamori(['collector', 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', collector.data]);
    try {
      await waitFor(() => second.output().includes('listening on'), 'the second collector');
      const res = await page.goto(`http://127.0.0.1:${port}/terminals`);
      expect(res?.status()).toBe(200);
      expect(new URL(page.url()).pathname).toBe('/terminals');
      expect(await page.locator('.who').innerText()).toContain('kanri');
    } finally {
      await second.stop();
    }
  });

  it('reads in English too', async () => {
    await open(page, '/');
    await Promise.all([page.waitForURL(`${collector.url}/`), page.click('a.lang')]);
    expect(await page.locator('h1').innerText()).toBe('Dashboard');
    await shot(page, 'en-01-dashboard');
    for (const [url, name] of [
      ['/terminals', 'en-02-terminals'],
      [`/terminals/${seeded.byHost('SOUMU-PC001').enrolled.agentId}`, 'en-03-terminal'],
      ['/incidents', 'en-04-incidents'],
      ['/exceptions', 'en-06-exceptions'],
      ['/policies/lgwan', 'en-09-policy-edit'],
      ['/exports', 'en-12-exports'],
      ['/users', 'en-13-users'],
      ['/audit', 'en-14-audit'],
    ] as const) {
      await open(page, url);
      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      await shot(page, name);
    }
    await Promise.all([page.waitForURL(/\/audit$/), page.click('a.lang')]);
  });

  it('lets an auditor read and export but change nothing, with a page saying so rather than a login', async () => {
    const auditBefore = (await collector.api<unknown[]>('/api/v1/admin/audit?limit=5000')).body.length;
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'ja-JP', timezoneId: 'Asia/Tokyo' });
    const auditor = await logIn(context, 'kansa');
    const t = seeded.byHost('LGWAN-PC101').enrolled.agentId;
    const fill = (url: string) =>
      url
        .replace(':id', url.startsWith('/terminals') ? t : url.startsWith('/incidents') ? seeded.incidentReceipts[0]! : seeded.requests[2]!.id)
        .replace(':segment', 'lgwan')
        .replace(':version', '1')
        .replace(':name', 'kanri');
    const policyBefore = await collector.api<Policy>('/api/v1/admin/policies/lgwan');
    await open(auditor, '/terminals');
    const csrf = await auditor.locator('input[name=_csrf]').first().inputValue();
    for (const r of CONSOLE_ROUTES) {
      const url = fill(r.url);
      const allowed = (PAGE_ROLES[r.page] as readonly string[]).includes('auditor');
      if (r.method === 'GET') {
        if (url.startsWith('/exports/download') || url.endsWith('.csv')) {
          const status = await auditor.evaluate(async (u) => (await fetch(u)).status, url);
          expect(status, url).toBe(allowed ? 200 : 403);
          continue;
        }
        const res = await auditor.goto(`${collector.url}${url}`);
        expect(res?.status(), url).toBe(allowed ? 200 : 403);
        expect(new URL(auditor.url()).pathname, `${url} is not redirected`).toBe(url.split('?')[0]);
        if (!allowed) expect(await auditor.locator('h1').innerText()).toBe('この操作の権限がありません');
      } else {
        // Submitted from the auditor's own page with the auditor's own token, as a form would.
        const status = await auditor.evaluate(
          async ({ u, token }) =>
            (
              await fetch(u, {
                method: 'POST',
                body: new URLSearchParams({
                  _csrf: token,
                  minutes: '60',
                  status: 'closed',
                  role: 'auditor',
                  password: 'x'.repeat(20),
                  baseVersion: '1',
                  document: '{}',
                }),
                redirect: 'manual',
              })
            ).status,
          { u: url, token: csrf },
        );
        expect(status, `POST ${url}`).toBe(allowed ? 200 : 403);
      }
    }
    await open(auditor, '/policies', 403);
    await shot(auditor, 'ja-15-auditor-forbidden');
    expect((await collector.api<Policy>('/api/v1/admin/policies/lgwan')).body.version).toBe(policyBefore.body.version);
    const audit = (await collector.api<{ action: string; actor: string }[]>('/api/v1/admin/audit?limit=5000')).body;
    const byAuditor = audit
      .slice(0, audit.length - auditBefore)
      .filter((a) => a.actor === 'kansa')
      .map((a) => a.action);
    expect(byAuditor).toEqual(expect.arrayContaining(['login', 'terminal.view', 'inventory.export', 'audit.export']));
    expect(byAuditor).not.toEqual(expect.arrayContaining(['policy.change']));
    await context.close();
  });

  it('ran no script a terminal sent and broke no content rule on any page', () => {
    expect(dialogs.filter((d) => d !== '却下')).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
