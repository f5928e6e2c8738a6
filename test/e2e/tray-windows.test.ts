import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectIpc } from '../../src/agent/ipc/socket';
import { BRIDGE_METHODS, createBridge, createIpcClient, type AgentService, type BridgeResult } from '../../src/shared';
import { PRESETS, buildSysfs } from '../fixtures/linux/sysfs';
import { ROOT, launchChromium, mamori, requireBuild, startCollector, startMamori, waitFor, type Running, type TestCollector } from './helpers';

const SHOTS = path.join(ROOT, 'test-output', 'tray');

let dir: string;
let collector: TestCollector;
let agent: Running;
let client: AgentService & { close(): void };
let browser: Browser;
let pages: http.Server;
let pagesUrl: string;
const root = () => path.join(dir, 'root');
const authorized = (iface: string) =>
  fs.readFileSync(path.join(fs.realpathSync(path.join(root(), 'sys', 'bus', 'usb', 'devices', iface)), 'authorized'), 'utf8').trim();

beforeAll(async () => {
  requireBuild();
  fs.mkdirSync(SHOTS, { recursive: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-tray-'));
  buildSysfs(root(), [PRESETS.keyboard(), { ...PRESETS.stickWithSerial('1-2', 'STICK-A'), product: 'Ultra <script>alert(1)</script>' }]);
  collector = await startCollector(path.join(dir, 'collector'));
  await collector.api('/api/v1/admin/policies/mynumber', {
    method: 'PUT',
    body: { removableMedia: { mode: 'block', allow: [] }, incidentContact: '情報政策課 CSIRT 内線 1234' },
  });
  const args = ['--data-dir', path.join(dir, 'agent'), '--system-root', root()];
  await mamori(['agent', 'enroll', '--collector', collector.url, '--token', await collector.token('mynumber'), ...args]);
  const sock = path.join(dir, 'run', 'agent.sock');
  agent = startMamori(['agent', 'run', ...args, '--ipc', sock]);
  await waitFor(() => fs.existsSync(sock), 'the agent socket');
  client = createIpcClient(await connectIpc(sock));
  await waitFor(async () => (await client.status()).collectorReachable && authorized('1-2:1.0') === '0', 'the agent to sync and block');
  // Module scripts do not load from file://; main serves the windows over its own scheme, the
  // test over loopback HTTP, from the same files.
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png' };
  pages = http.createServer((req, res) => {
    const file = path.normalize(path.join(ROOT, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!file.startsWith(ROOT) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(fs.readFileSync(file));
  });
  await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
  pagesUrl = `http://127.0.0.1:${(pages.address() as { port: number }).port}`;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  pages?.close();
  client?.close();
  await agent?.stop();
  await collector?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Opens a tray window with `window.mamori` built by the preload's own createBridge, whose invoke
 * goes, as main's handler does, to the real agent over its socket.
 */
async function openWindow(name: string, lang: 'ja' | 'en' = 'ja', query = '', scale = 1): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 640, height: 760 }, deviceScaleFactor: scale });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  (page as Page & { errors: string[] }).errors = errors;
  await page.exposeFunction('__mamoriInvoke', async (channel: string, params: unknown): Promise<BridgeResult> => {
    const method = channel.replace(/^mamori:/, '');
    if (method === 'locale') return { ok: true, value: lang };
    if (!(BRIDGE_METHODS as readonly string[]).includes(method)) return { ok: false, error: { code: 'method_not_found', message: method } };
    try {
      return { ok: true, value: await (client[method as keyof AgentService] as (p: unknown) => Promise<unknown>)(params ?? undefined) };
    } catch (err) {
      return { ok: false, error: { code: (err as { code?: string }).code ?? 'internal', message: (err as Error).message } };
    }
  });
  await page.addInitScript(`window.mamori = (${createBridge.toString()})((c, p) => window.__mamoriInvoke(c, p));`);
  await page.goto(`${pagesUrl}/dist/web/renderer/${name}.html${query}`);
  return page;
}

describe('the tray windows in Chromium, against a real agent', () => {
  it('shows the protection status in Japanese, with the blocked stick named as text', async () => {
    const page = await openWindow('status');
    await page.getByText('ポリシー適用中').waitFor();
    await expect(page.locator('#segment').textContent()).resolves.toBe('マイナンバー利用事務系');
    await expect(page.locator('#contact').textContent()).resolves.toBe('情報政策課 CSIRT 内線 1234');
    await page.locator('#blocked li').first().waitFor();
    expect(await page.locator('#blocked li').first().textContent()).toContain('<script>alert(1)</script>');
    expect(await page.locator('#blocked script').count()).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, 'status-ja.png'), fullPage: true });
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
  });

  it('lets a staff member file an incident by keyboard alone and get a receipt the collector has', async () => {
    const page = await openWindow('incident');
    const started = Date.now();
    await page.locator('#description').waitFor();
    await page.keyboard.type('請求書を装ったメールの添付ファイルを開いてしまいました。');
    await page.locator('#contact').fill('内線 5678');
    await page.locator('input[value=suspicious_email]').check();
    await page.locator('#description').focus();
    await page.keyboard.press('Tab');
    await page.getByRole('button', { name: '報告する' }).press('Enter');
    await page.locator('#done').waitFor({ timeout: 10_000 });
    const receipt = (await page.locator('#receipt').textContent())!;
    expect(receipt).toMatch(/^INC-\d{8}-[0-9A-F]{6}$/);
    expect(Date.now() - started).toBeLessThan(60_000);
    await expect(page.locator('#contactInfo').textContent()).resolves.toBe('情報政策課 CSIRT 内線 1234');
    await page.screenshot({ path: path.join(SHOTS, 'incident-ja.png'), fullPage: true });
    await waitFor(
      async () => (await collector.api<{ receipt: string }[]>('/api/v1/admin/incidents')).body.some((i) => i.receipt === receipt),
      'the incident at the collector',
    );
  });

  it('requests an exception and redeems an offline unlock code once', async () => {
    const page = await openWindow('exception', 'ja', '?vendorId=0781&productId=5581&serial=STICK-A&port=1-2');
    await page.locator('#device option').first().waitFor({ state: 'attached' });
    await page.locator('#reason').fill('会議資料の受け取り');
    await page.locator('#minutes').selectOption('30');
    await page.screenshot({ path: path.join(SHOTS, 'exception-request-ja.png'), fullPage: true });
    await page.getByRole('button', { name: '利用を申請する' }).click();
    await page.locator('#requested').waitFor({ timeout: 10_000 });
    const requestCode = (await page.locator('#requestCode').textContent())!;
    expect(requestCode).toMatch(/^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{6}$/);
    // The exact device, to read out with the code.
    expect(await page.locator('#requestScope').textContent()).toBe('0781:5581 serial STICK-A');
    await page.screenshot({ path: path.join(SHOTS, 'exception-code-ja.png'), fullPage: true });
    const unlock = (
      await mamori(['collector', 'unlock', '--request', requestCode, '--device', '0781:5581 serial STICK-A', '--minutes', '30', '--data-dir', collector.data])
    ).stdout.trim();
    await page.locator('#code').fill(unlock.toLowerCase());
    await page.getByRole('button', { name: '許可コードを入力する' }).click();
    await page.locator('#granted').waitFor();
    await waitFor(() => authorized('1-2:1.0') === '1', 'the stick to be authorized');
    await page.screenshot({ path: path.join(SHOTS, 'exception-granted-ja.png'), fullPage: true });

    const replay = await openWindow('exception', 'ja');
    await replay.locator('#device option').first().waitFor({ state: 'attached' });
    await replay.locator('#reason').fill('再利用');
    await replay.locator('#device option').first().waitFor({ state: 'attached' });
    await replay.getByRole('button', { name: '利用を申請する' }).click();
    await replay.locator('#requested').waitFor({ timeout: 10_000 });
    await replay.locator('#code').fill(unlock);
    await replay.getByRole('button', { name: '許可コードを入力する' }).click();
    await replay.locator('#error').waitFor({ timeout: 10_000 });
    await expect(replay.locator('#error').textContent()).resolves.toContain('許可コードが正しくありません');
  });

  it('renders in English at 200 % scaling', async () => {
    const en = await openWindow('incident', 'en', '', 2);
    await en.getByText('Report an incident').first().waitFor();
    expect(await en.getByRole('button', { name: 'Report' }).isVisible()).toBe(true);
    expect(await en.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await en.screenshot({ path: path.join(SHOTS, 'incident-en.png'), fullPage: true });
  });
});
