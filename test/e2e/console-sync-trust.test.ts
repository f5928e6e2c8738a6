import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, type EnrollResponse } from '../../src/shared';
import { HOSTILE, fetchCall, sendEvents, type SeededTerminal } from '../helpers/console-seed';
import { launchChromium, requireBuild, startCollector, type TestCollector } from './helpers';

const PASSWORD = 'correct horse battery staple';
const RECEIPT = 'INC-20261201-SAME01';

let dir: string;
let collector: TestCollector;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const errors: string[] = [];
const t = {} as Record<'stalled' | 'hostile' | 'twinA' | 'twinB', SeededTerminal>;

async function enroll(hostname: string): Promise<SeededTerminal> {
  const res = await fetchCall(collector.url)('POST', '/api/v1/enroll', {
    body: { token: await collector.token('lgwan'), hostname, machineId: crypto.randomUUID() },
  });
  expect(res.status).toBe(200);
  return { hostname, segment: 'lgwan', enrolled: res.json as EnrollResponse, last: { seq: 0, hash: GENESIS_HASH } };
}

const xss = () => page.evaluate(() => (window as unknown as { __xss?: number }).__xss);

async function open(url: string, status = 200): Promise<void> {
  const res = await page.goto(`${collector.url}${url}`);
  expect(res?.status(), url).toBe(status);
  expect(await xss(), url).toBeUndefined();
}

/** The visible text of the terminal list's row for `host`. */
const rowOf = (host: string) => page.locator('#terminals tbody tr', { hasText: host }).innerText();

beforeAll(async () => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-e2e-console-trust-'));
  collector = await startCollector(path.join(dir, 'collector'));
  const call = fetchCall(collector.url);
  t.stalled = await enroll('STALL-PC001');
  t.hostile = await enroll('HOSTILE-PC002');
  t.twinA = await enroll('TWIN-PC003');
  t.twinB = await enroll('TWIN-PC004');
  for (const x of Object.values(t))
    expect(await sendEvents(call, x, [{ at: new Date(), type: 'agent.started', payload: { version: '0.1.0', platform: 'win32', hostname: x.hostname } }])).toBe(
      200,
    );

  // STALL-PC001 reports 40 events beyond what it sent. The collector's own clock is the wall clock,
  // so "its outbox has not moved for 40 minutes" is set in its database.
  const head = await fetch(`${collector.url}/api/v1/agents/${t.stalled.enrolled.agentId}/policy`, {
    headers: { authorization: `Bearer ${t.stalled.enrolled.agentToken}`, 'mamori-head': `${t.stalled.last.seq + 40}:${'a'.repeat(64)}` },
  });
  expect(head.status).toBe(200);
  const db = new Database(path.join(collector.data, 'collector.db'));
  db.prepare('update agents set progress_at = ? where id = ?').run(new Date(Date.now() - 40 * 60_000).toISOString(), t.stalled.enrolled.agentId);
  db.close();

  // HOSTILE-PC002 sends an event with a field named as markup: refused, flagged, the name quoted.
  const forged = {
    seq: 2,
    at: new Date().toISOString(),
    type: 'agent.stopped',
    payload: { reason: 'stop' },
    prevHash: t.hostile.last.hash,
    hash: 'f'.repeat(64),
    [HOSTILE.img]: 1,
  };
  expect(
    (await call('POST', `/api/v1/agents/${t.hostile.enrolled.agentId}/events`, { token: t.hostile.enrolled.agentToken, body: { events: [forged] } })).status,
  ).toBe(400);

  // Two terminals issue the same receipt number.
  for (const [x, description] of [
    [t.twinA, '双子の端末 A の報告'],
    [t.twinB, '双子の端末 B の報告'],
  ] as const) {
    const payload = {
      receipt: RECEIPT,
      category: 'suspicious_email',
      description,
      contact: '内線 2345',
      context: { hostname: x.hostname, osUser: 'yamada.taro', inventoryHash: '0'.repeat(64), recentEvents: [] },
    };
    expect(await sendEvents(call, x, [{ at: new Date(), type: 'incident.reported', payload }])).toBe(200);
  }

  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'ja-JP', timezoneId: 'Asia/Tokyo', acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 500) errors.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(`${collector.url}/`);
  await page.fill('#username', 'kanri');
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(`${collector.url}/`), page.click('button[type=submit].primary')]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await collector?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('sync trust and incident ids in the console, in Chromium', () => {
  it('the terminal list shows a stalled terminal and why a chain is broken, the markup in the reason as text', async () => {
    await open('/terminals');
    expect(await rowOf('STALL-PC001')).toContain('送信が停滞');
    expect(await page.locator('#terminals tbody tr', { hasText: 'STALL-PC001' }).locator('.stalled').getAttribute('title')).toBe(
      '送信が停滞しています: 送信待ちの記録 40 件が 30 分以上減っていません',
    );
    expect(await rowOf('TWIN-PC003')).not.toContain('送信が停滞');
    const hostile = await rowOf('HOSTILE-PC002');
    expect(hostile).toContain('異常 (seq 2)');
    expect(hostile).toContain(`理由: batch refused: body.events.0.${HOSTILE.img}: unknown field`);
    expect(await page.locator('#terminals img').count()).toBe(0);
  });

  it('the terminal page shows the records waiting to be sent, the stall and the reason', async () => {
    await open(`/terminals/${t.stalled.enrolled.agentId}`);
    expect(await page.locator('#outbox-status').innerText()).toBe('40 送信が停滞しています: 送信待ちの記録 40 件が 30 分以上減っていません');
    expect(await page.locator('#chain-status').innerText()).toBe('ログの完全性: 正常');
    await open(`/terminals/${t.hostile.enrolled.agentId}`);
    expect(await page.locator('#chain-status').innerText()).toBe('ログの完全性: 異常（seq 2 以降）');
    expect(await page.locator('#chain-reason').innerText()).toBe(`batch refused: body.events.0.${HOSTILE.img}: unknown field ${JSON.stringify(HOSTILE.img)}`);
    expect(await page.locator('main img').count()).toBe(0);
    await Promise.all([page.waitForURL(/\/terminals\//), page.click('a.lang')]);
    expect(await page.locator('#chain-reason').innerText()).toContain('batch refused');
    expect(await page.locator('dt', { hasText: 'Why the log is broken' }).count()).toBe(1);
    await Promise.all([page.waitForURL(/\/terminals\//), page.click('a.lang')]);
  });

  it('the ledger an admin downloads carries the records waiting to be sent, the stall and the broken chain', async () => {
    await open('/exports');
    const res = await context.request.get(`${collector.url}/exports/download?format=csv&lang=en&segment=`);
    expect(res.status()).toBe(200);
    const rows = parseCsv((await res.text()).replace(/^\ufeff/, ''), { columns: true }) as Record<string, string>[];
    const by = (host: string) => rows.find((r) => r.hostname === host)!;
    expect(by('STALL-PC001')).toMatchObject({ pending_events: '40', stalled: 'stalled', chain_broken_seq: '', chain_broken_reason: '' });
    expect(by('HOSTILE-PC002')).toMatchObject({ pending_events: '0', stalled: '', chain_broken_seq: '2' });
    expect(by('HOSTILE-PC002').chain_broken_reason).toContain(HOSTILE.img);
  });

  it('two terminals with the same receipt each open their own incident', async () => {
    await open('/incidents');
    const links = page.locator('#incidents a.mono');
    expect(await links.allInnerTexts()).toEqual([RECEIPT, RECEIPT]);
    for (const [x, mine, theirs] of [
      [t.twinA, 'A', 'B'],
      [t.twinB, 'B', 'A'],
    ] as const) {
      await open('/incidents');
      await Promise.all([
        page.waitForURL(`${collector.url}/incidents/${x.enrolled.agentId}:${RECEIPT}`),
        page.click(`a[href="/incidents/${x.enrolled.agentId}:${RECEIPT}"]`),
      ]);
      const text = await page.locator('#incident-description').innerText();
      expect(text).toBe(`双子の端末 ${mine} の報告`);
      expect(text).not.toContain(theirs);
      expect(await page.locator('main').innerText()).toContain(x.hostname);
    }
    // Moving B's incident moves B's only.
    await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("対応中にする")')]);
    expect(await page.locator('.flash.ok').innerText()).toContain(`インシデント ${RECEIPT} を「対応中」にしました`);
    await open('/incidents');
    const statuses = await page.locator('#incidents tbody tr').evaluateAll((rows) => rows.map((r) => r.textContent ?? ''));
    expect(statuses.filter((s) => s.includes('TWIN-PC004') && s.includes('対応中'))).toHaveLength(1);
    expect(statuses.filter((s) => s.includes('TWIN-PC003') && s.includes('未対応'))).toHaveLength(1);
  });

  it('a language switch or a login with a Japanese next lands there instead of answering 500', async () => {
    const res = await page.goto(`${collector.url}/lang/ja?next=/%E3%81%82`);
    expect(res?.status()).toBe(404);
    expect(new URL(page.url()).pathname).toBe('/%E3%81%82');
    const fresh = await browser.newContext({ locale: 'ja-JP' });
    const p = await fresh.newPage();
    await p.goto(`${collector.url}/login?next=/%E3%81%82`);
    await p.fill('#username', 'kanri');
    await p.fill('#password', PASSWORD);
    const [answer] = await Promise.all([p.waitForResponse((r) => new URL(r.url()).pathname === '/%E3%81%82'), p.click('button[type=submit].primary')]);
    expect(answer.status()).toBe(404);
    await fresh.close();
    expect(errors).toEqual([]);
  });
});
