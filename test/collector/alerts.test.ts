import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCollectorDb, parseDbUrl, type CollectorDb } from '../../src/collector/db/connect';
import { formatMail, oneLine } from '../../src/collector/alerts/format';
import { alertForEvent, lastDigestPeriod, parseRecipient, validateRule, type AlertEvent } from '../../src/collector/alerts/rules';
import { decryptSecret, encryptSecret } from '../../src/collector/alerts/secret';
import { evaluateEvents, evaluateState } from '../../src/collector/alerts/service';
import { acquireAlertLease, addRule, dueMails, listRules, outboxSummary } from '../../src/collector/alerts/store';
import { stampPending } from '../../src/collector/forward/store';
import { fixedClock } from '../../src/shared';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
const ACTOR = { username: 'kanri', role: 'admin' as const, address: '127.0.0.1' };
const clock = fixedClock('2026-11-22T00:05:00.000Z');

function event(type: string, payload: unknown, over: Partial<AlertEvent> = {}): AlertEvent {
  return { agent_id: 'a1', seq: 7, at: clock.now().toISOString(), type, payload: JSON.stringify(payload), hostname: 'SOUMU-PC01', segment: 'lgwan', ...over };
}

const incident = (receipt: string) => ({
  receipt,
  category: 'malware',
  description: '画面に身代金要求が表示された',
  context: { hostname: 'SOUMU-PC01', osUser: 'tanaka', inventoryHash: '', recentEvents: [] },
});

describe('alert mail text', () => {
  it('says what an incident is in Japanese, with receipt, category, terminal and console link', () => {
    const alert = alertForEvent(event('incident.reported', incident('20261122-0001')))!;
    const mail = formatMail(alert, 'ja', 'https://collector.example:8443/');
    expect(mail.subject).toBe('【Mamori】インシデントの報告 受付番号 20261122-0001 (SOUMU-PC01)');
    expect(mail.body).toContain('受付番号: 20261122-0001');
    expect(mail.body).toContain('区分 (インシデント): ウイルス・ランサムウェア感染の疑い');
    expect(mail.body).toContain('区分: LGWAN 接続系');
    expect(mail.body).toContain('日時: 2026年11月22日 09:05');
    expect(mail.body).toContain('コンソール: https://collector.example:8443/incidents/a1:20261122-0001');
    const en = formatMail(alert, 'en');
    expect(en.subject).toBe('[Mamori] Incident reported, receipt number 20261122-0001 (SOUMU-PC01)');
    expect(en.body).toContain('Category: suspected malware or ransomware');
    expect(en.body).toContain('Time: 2026-11-22T00:05:00.000Z');
  });

  it('a host name with CR/LF cannot add a header: the subject stays one line', () => {
    const hostile = 'PC\r\nBcc: victim@example.org\r\n\r\nbody';
    const alert = alertForEvent(event('tamper.detected', { what: 'service\u202e', detail: 'x\nサービス: fake' }, { hostname: hostile }))!;
    const mail = formatMail(alert, 'ja');
    expect(mail.subject).not.toMatch(/[\r\n]/);
    expect(mail.subject).toBe('【Mamori】改ざんを検知 (PC Bcc: victim@example.org body)');
    // A value's own lines are indented: none can pass for a label line of ours.
    expect(mail.body.split('\n')).toContain('    サービス: fake');
    expect(mail.body).not.toContain('\u202e');
    expect(oneLine('a\u2028b\0c')).toBe('a b c');
  });

  it('an uninstall release is not an alert; another stop is', () => {
    expect(alertForEvent(event('agent.stopped', { reason: 'released (uninstall): by kanri' }))).toBeUndefined();
    expect(alertForEvent(event('agent.stopped', { reason: 'service stopped' }))?.kind).toBe('agent_stopped');
    expect(alertForEvent(event('policy.applied', { segment: 'lgwan', version: 1, mode: 'block', enforcement: 'degraded' }))?.kind).toBe('degraded');
    expect(alertForEvent(event('policy.applied', { segment: 'lgwan', version: 1, mode: 'block', enforcement: 'active' }))).toBeUndefined();
  });

  it('refuses a rule field it does not know, by name, and a recipient that is not a plain address', () => {
    expect(() => validateRule({ type: 'incident', segment: '*', recipients: [{ address: 'csirt@city.example.lg.jp', language: 'ja' }], cc: 'x' })).toThrow(
      "unknown field 'cc'",
    );
    expect(() => validateRule({ type: 'incident', segment: '*', recipients: [{ address: 'a@b.jp', language: 'ja', name: 'x' }] })).toThrow(
      "recipients[0]: unknown field 'name'",
    );
    expect(() => parseRecipient('csirt@city.jp\r\nBcc: x@y.jp')).toThrow(/plain mail address/);
    expect(() => parseRecipient('"CSIRT" <csirt@city.jp>')).toThrow(/plain mail address/);
    expect(parseRecipient('csirt@city.jp:en')).toEqual({ address: 'csirt@city.jp', language: 'en' });
    expect(() => validateRule({ type: 'incident', segment: '*', recipients: [{ address: 'a@b.jp', language: 'ja' }], options: { days: 3 } })).toThrow(
      'options.days applies to not_seen only',
    );
  });

  it('a daily digest covers the last full day in Japan time', () => {
    expect(lastDigestPeriod('daily', new Date('2026-11-22T00:05:00Z'))).toEqual({
      from: new Date('2026-11-20T15:00:00Z'),
      to: new Date('2026-11-21T15:00:00Z'),
    });
    expect(lastDigestPeriod('hourly', new Date('2026-11-22T00:05:00Z'))).toEqual({
      from: new Date('2026-11-21T23:00:00Z'),
      to: new Date('2026-11-22T00:00:00Z'),
    });
  });

  it('the stored password is unreadable without the key and readable with it', () => {
    const key = Buffer.alloc(32, 7);
    const enc = encryptSecret(key, 'p@ss');
    expect(enc).not.toContain('p@ss');
    expect(decryptSecret(key, enc)).toBe('p@ss');
    expect(() => decryptSecret(Buffer.alloc(32, 8), enc)).toThrow(/cannot be read/);
  });
});

describe.each(ENGINES)('alert outbox on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  let handle: CollectorDb;
  let drop: () => Promise<void>;
  let seq = 0;

  beforeEach(async () => {
    if (skip) return;
    let url: string;
    ({ url, drop } = await createEngineDatabase(engine, 'mamori-alerts-'));
    handle = await openCollectorDb(parseDbUrl(url));
    seq = 0;
    await handle.db
      .insertInto('agents')
      .values({
        id: 'a1',
        hostname: 'SOUMU-PC01',
        machine_id: 'm',
        segment: 'lgwan',
        token_hash: 'x',
        unlock_secret: 'x',
        enrolled_at: clock.now().toISOString(),
        last_seen: clock.now().toISOString(),
        ack_seq: 0,
        last_hash: '',
        chain_broken_seq: null,
        policy_version: null,
      })
      .execute();
  });
  afterEach(async () => {
    if (skip) return;
    await handle.destroy();
    await drop();
  });

  const store = async (type: string, payload: unknown, at = clock.now()) => {
    seq++;
    await handle.db
      .insertInto('events')
      .values({
        agent_id: 'a1',
        seq,
        at: at.toISOString(),
        type,
        payload: JSON.stringify(payload),
        prev_hash: '',
        hash: `h${seq}`,
        received_at: at.toISOString(),
      })
      .execute();
  };
  const evaluate = async (owner = 'c1') => {
    expect(await acquireAlertLease(handle.db, owner, clock.now(), 30_000)).toBe(true);
    await stampPending(handle.db);
    return evaluateEvents(handle.db, await listRules(handle.db), owner, undefined, clock.now(), 500);
  };

  it.skipIf(skip)('each recipient gets one mail per event, in their language, and evaluating again adds none', async () => {
    await addRule(
      handle.db,
      ACTOR,
      {
        type: 'incident',
        segment: '*',
        recipients: [
          { address: 'csirt@city.jp', language: 'ja' },
          { address: 'vendor@example.com', language: 'en' },
        ],
        options: {},
      },
      clock.now(),
    );
    await addRule(
      handle.db,
      ACTOR,
      { type: 'incident', segment: 'mynumber', recipients: [{ address: 'mn@city.jp', language: 'ja' }], options: {} },
      clock.now(),
    );
    await store('incident.reported', incident('R-1'));
    await store('login.success', { user: 'tanaka', source: 'wtmp' });
    expect(await evaluate()).toBe(2);
    const due = await dueMails(handle.db, clock.now(), 10);
    expect(due.map((m) => [m.recipient, m.subject])).toEqual([
      ['csirt@city.jp', '【Mamori】インシデントの報告 受付番号 R-1 (SOUMU-PC01)'],
      ['vendor@example.com', '[Mamori] Incident reported, receipt number R-1 (SOUMU-PC01)'],
    ]);
    expect(await evaluate()).toBe(0);
    // A cursor moved back (a restore, a second evaluator) still mails nothing twice.
    await handle.db.updateTable('alert_state').set({ event_cursor: 0 }).execute();
    expect(await evaluate()).toBe(2);
    expect((await dueMails(handle.db, clock.now(), 10)).length).toBe(2);
  });

  it.skipIf(skip)('a rule added later mails nothing about incidents received before it', async () => {
    await store('incident.reported', incident('R-OLD'), new Date(clock.now().getTime() - 60_000));
    await addRule(handle.db, ACTOR, { type: 'incident', segment: '*', recipients: [{ address: 'csirt@city.jp', language: 'ja' }], options: {} }, clock.now());
    await store('incident.reported', incident('R-NEW'));
    await evaluate();
    expect((await dueMails(handle.db, clock.now(), 10)).map((m) => m.subject)).toEqual(['【Mamori】インシデントの報告 受付番号 R-NEW (SOUMU-PC01)']);
  });

  it.skipIf(skip)('a rule over its hourly limit keeps the rest as suppressed, not sent', async () => {
    await addRule(
      handle.db,
      ACTOR,
      { type: 'tamper', segment: '*', recipients: [{ address: 'csirt@city.jp', language: 'ja' }], options: { ratePerHour: 3 } },
      clock.now(),
    );
    for (let i = 0; i < 5; i++) await store('tamper.detected', { what: 'service', detail: `stop ${i}` });
    await evaluate();
    expect(await outboxSummary(handle.db)).toMatchObject({ pending: 3, suppressed: 2 });
  });

  it.skipIf(skip)('a collector without the lease moves nothing and queues nothing', async () => {
    await addRule(handle.db, ACTOR, { type: 'incident', segment: '*', recipients: [{ address: 'csirt@city.jp', language: 'ja' }], options: {} }, clock.now());
    await store('incident.reported', incident('R-2'));
    expect(await acquireAlertLease(handle.db, 'c1', clock.now(), 30_000)).toBe(true);
    expect(await acquireAlertLease(handle.db, 'c2', clock.now(), 30_000)).toBe(false);
    await stampPending(handle.db);
    await expect(evaluateEvents(handle.db, await listRules(handle.db), 'c2', undefined, clock.now(), 500)).rejects.toThrow();
    expect((await outboxSummary(handle.db)).pending).toBe(0);
  });

  it.skipIf(skip)('a broken chain, a silent terminal and an hourly digest are each mailed once', async () => {
    const to = [{ address: 'csirt@city.jp', language: 'ja' as const }];
    await addRule(handle.db, ACTOR, { type: 'chain_broken', segment: '*', recipients: to, options: {} }, clock.now());
    await addRule(handle.db, ACTOR, { type: 'not_seen', segment: 'lgwan', recipients: to, options: { days: 3 } }, clock.now());
    await addRule(handle.db, ACTOR, { type: 'blocked_digest', segment: 'lgwan', recipients: to, options: { period: 'hourly' } }, clock.now());
    const dev = { vendorId: '0781', productId: '5567', serial: 'S1', manufacturer: 'SanDisk', product: 'Cruzer', deviceClass: '08', port: '1-1' };
    await store('device.blocked', dev, new Date(clock.now().getTime() - 20 * 60_000));
    await store('device.blocked', dev, new Date(clock.now().getTime() - 10 * 60_000));
    await handle.db
      .updateTable('agents')
      .set({ chain_broken_seq: 4, chain_broken_reason: 'hash mismatch', last_seen: new Date(clock.now().getTime() - 4 * 86_400_000).toISOString() })
      .execute();
    const rules = await listRules(handle.db);
    await evaluateState(handle.db, rules, undefined, clock.now());
    await evaluateState(handle.db, rules, undefined, clock.now());
    const subjects = (await dueMails(handle.db, clock.now(), 10)).map((m) => m.subject);
    expect(subjects).toEqual([
      '【Mamori】ログの完全性: 異常 (SOUMU-PC01)',
      '【Mamori】3 日以上接続のない端末 (SOUMU-PC01)',
      '【Mamori】外部記録媒体の使用禁止 2 件 (1 時間)',
    ]);
  });
});
