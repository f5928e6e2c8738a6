import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acceptPolicy, type Enrollment } from '../../src/agent/policy';
import { openEventStore } from '../../src/agent/store';
import { addAdmin } from '../../src/collector/admins';
import { STALL_AFTER_MS, createEnrollmentToken } from '../../src/collector/agents';
import { KEY_FILE_NAME, rotateSigningKey } from '../../src/collector/crypto';
import { unlockCode } from '../../src/collector/exceptions';
import { createCollector, type Collector } from '../../src/collector/server';
import { makeRequestCode, type EnrollResponse } from '../../src/shared';
import { makeChain } from '../helpers/chain';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');

describe.each(ENGINES)('sync trust on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  let collector: Collector;
  let dbUrl: string;
  let keyDir: string;
  let cleanup: () => Promise<void>;
  let adminToken: string;
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };
  const keyFile = () => path.join(keyDir, KEY_FILE_NAME);

  beforeEach(async () => {
    if (skip) return;
    offsetMs = 0;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-synctrust-');
    dbUrl = url;
    keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-key-'));
    cleanup = async () => {
      await drop();
      fs.rmSync(keyDir, { recursive: true, force: true });
    };
    collector = await createCollector({ db: url, logger: false, clock, keyFile: keyFile() });
    adminToken = await addAdmin(collector.ctx.db, 'kanri', 'admin', 'correct horse battery');
  });
  afterEach(async () => {
    if (skip) return;
    await collector.stop();
    await cleanup();
  });

  const inject = (opts: { method: string; url: string; token?: string; body?: unknown; head?: string }) =>
    collector.app.inject({
      method: opts.method as 'GET',
      url: opts.url,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.head ? { 'mamori-head': opts.head } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      payload: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });

  async function enrolled(hostname = 'pc-001'): Promise<EnrollResponse> {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'mynumber', ttlMs: 3_600_000, uses: 1 });
    const res = await inject({ method: 'POST', url: '/api/v1/enroll', body: { token, hostname, machineId: crypto.randomUUID() } });
    expect(res.statusCode).toBe(200);
    return res.json() as EnrollResponse;
  }
  const send = (agent: EnrollResponse, events: unknown[], head?: string) =>
    inject({ method: 'POST', url: `/api/v1/agents/${agent.agentId}/events`, token: agent.agentToken, body: { events }, head });
  const terminal = async (agent: EnrollResponse) =>
    ((await inject({ method: 'GET', url: '/api/v1/admin/terminals', token: adminToken })).json() as Record<string, unknown>[]).find(
      (t) => t.agentId === agent.agentId,
    )!;

  it.skipIf(skip)('a batch with an edited unsynced event flags the terminal with its seq and reason (it was silently refused forever)', async () => {
    const agent = await enrolled();
    const chain = makeChain(5);
    expect((await send(agent, chain.slice(0, 2))).statusCode).toBe(200);
    // A local user edited seq 3's type in the agent's database.
    const edited = chain.slice(2).map((e) => (e.seq === 3 ? { ...e, type: 'no.such.type' } : e));
    const refused = await send(agent, edited);
    expect(refused.statusCode).toBe(400);
    const t = await terminal(agent);
    expect(t.chainBroken).toBe(3);
    expect(String(t.chainBrokenReason)).toContain('batch refused');
  });

  it.skipIf(skip)('a gap in the unsynced events flags the terminal (a deleted row made every batch a 400)', async () => {
    const agent = await enrolled();
    const chain = makeChain(5);
    expect((await send(agent, chain.slice(0, 1))).statusCode).toBe(200);
    expect((await send(agent, [chain[1]!, chain[3]!, chain[4]!])).statusCode).toBe(400);
    expect((await terminal(agent)).chainBroken).toBe(3);
  });

  it.skipIf(skip)('the same seq_conflict twice in a row is a hole in the log and flags the terminal; once is not', async () => {
    const agent = await enrolled();
    const chain = makeChain(4);
    expect((await send(agent, chain.slice(0, 1))).statusCode).toBe(200);
    expect((await send(agent, chain.slice(2))).statusCode).toBe(409);
    expect((await terminal(agent)).chainBroken).toBeNull();
    expect((await send(agent, chain.slice(2))).statusCode).toBe(409);
    expect((await terminal(agent)).chainBroken).toBe(2);
  });

  it.skipIf(skip)('a head below the one reported before flags a truncated unsynced tail', async () => {
    const agent = await enrolled();
    const chain = makeChain(6);
    expect((await send(agent, chain.slice(0, 2), `6:${chain[5]!.hash}`)).statusCode).toBe(200);
    expect((await terminal(agent)).headSeq).toBe(6);
    // Seqs 5 and 6 were deleted before they were sent; the rest still chains.
    const policy = await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/policy`, token: agent.agentToken, head: `4:${chain[3]!.hash}` });
    expect(policy.statusCode).toBe(200);
    const t = await terminal(agent);
    expect(t.chainBroken).toBe(5);
    expect(String(t.chainBrokenReason)).toContain('cut back from seq 6 to seq 4');
  });

  it.skipIf(skip)('a chain rewritten after its head was reported is flagged when it arrives', async () => {
    const agent = await enrolled();
    const chain = makeChain(3);
    await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/exceptions`, token: agent.agentToken, head: `3:${chain[2]!.hash}` });
    // Seq 2 was edited and everything after re-hashed: a chain that verifies but is not the one reported.
    const forged = makeChain(3, { payload: (seq) => ({ version: seq === 2 ? '9.9.9' : '0.1.0', platform: 'linux', hostname: 'pc-001' }) });
    expect((await send(agent, forged)).statusCode).toBe(422);
    expect((await terminal(agent)).chainBroken).toBe(3);
    const malformed = await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/exceptions`, token: agent.agentToken, head: 'three' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.message).toContain('mamori-head');
  });

  it.skipIf(skip)('a terminal that keeps calling while its outbox does not move shows as stalled', async () => {
    const agent = await enrolled();
    const chain = makeChain(3);
    expect((await send(agent, chain.slice(0, 1), `3:${chain[2]!.hash}`)).statusCode).toBe(200);
    expect(await terminal(agent)).toMatchObject({ pendingEvents: 2, stalled: false });
    offsetMs = STALL_AFTER_MS + 60_000;
    await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/policy`, token: agent.agentToken, head: `3:${chain[2]!.hash}` });
    expect(await terminal(agent)).toMatchObject({ pendingEvents: 2, stalled: true, chainBroken: null });
    expect((await send(agent, chain.slice(1), `3:${chain[2]!.hash}`)).statusCode).toBe(200);
    expect(await terminal(agent)).toMatchObject({ pendingEvents: 0, stalled: false });
  });

  it.skipIf(skip)('two terminals reporting the same receipt both keep their incident (the second was dropped)', async () => {
    const a = await enrolled('pc-a');
    const b = await enrolled('pc-b');
    const incident = (description: string) => () => ({
      receipt: 'INC-20261124-ABC123',
      category: 'loss_theft',
      description,
      context: { hostname: 'x', osUser: 'u', inventoryHash: '', recentEvents: [] },
    });
    expect((await send(a, makeChain(1, { type: 'incident.reported', payload: incident('from a') }))).statusCode).toBe(200);
    expect((await send(b, makeChain(1, { type: 'incident.reported', payload: incident('from b') }))).statusCode).toBe(200);
    const listed = (await inject({ method: 'GET', url: '/api/v1/admin/incidents', token: adminToken })).json() as {
      id: string;
      description: string;
      hostname: string;
    }[];
    expect(listed.map((i) => i.description).sort()).toEqual(['from a', 'from b']);
    // The bare receipt is ambiguous now; the id names one.
    expect(
      (await inject({ method: 'PATCH', url: '/api/v1/admin/incidents/INC-20261124-ABC123', token: adminToken, body: { status: 'closed' } })).statusCode,
    ).toBe(400);
    const ofB = listed.find((i) => i.hostname === 'pc-b')!;
    expect((await inject({ method: 'PATCH', url: `/api/v1/admin/incidents/${ofB.id}`, token: adminToken, body: { status: 'closed' } })).statusCode).toBe(200);
    const after = (await inject({ method: 'GET', url: '/api/v1/admin/incidents?status=new', token: adminToken })).json() as { hostname: string }[];
    expect(after.map((i) => i.hostname)).toEqual(['pc-a']);
  });

  it.skipIf(skip)('enrollment whose audit entry fails leaves no agent and spends no token (it made separate commits)', async () => {
    const token = await createEnrollmentToken(collector.ctx.db, { segment: 'mynumber', ttlMs: 3_600_000, uses: 1 });
    if (engine === 'postgres') {
      await sql`CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql`.execute(collector.ctx.db);
      await sql`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse()`.execute(collector.ctx.db);
    } else {
      await sql`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END`.execute(collector.ctx.db);
    }
    const failed = await inject({ method: 'POST', url: '/api/v1/enroll', body: { token, hostname: 'pc-x', machineId: 'm-x' } });
    expect(failed.statusCode).toBe(500);
    expect(await collector.ctx.db.selectFrom('agents').selectAll().execute()).toEqual([]);
    await sql`DROP TRIGGER refuse_audit${engine === 'postgres' ? sql` ON audit_log` : sql``}`.execute(collector.ctx.db);
    const ok = await inject({ method: 'POST', url: '/api/v1/enroll', body: { token, hostname: 'pc-x', machineId: 'm-x' } });
    expect(ok.statusCode).toBe(200);
    const entry = await collector.ctx.db.selectFrom('audit_log').selectAll().where('action', '=', 'agent.enroll').executeTakeFirstOrThrow();
    expect(entry.target).toBe((ok.json() as EnrollResponse).agentId);
  });

  it.skipIf(skip)('the policy-signing key is in a 0600 key file, and no SQL reader sees it (it sat in a row)', async () => {
    const rows = await collector.ctx.db.selectFrom('keys').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.private_key).toBe('');
    expect(fs.statSync(keyFile()).mode & 0o777).toBe(0o600);
    expect(crypto.createPrivateKey(fs.readFileSync(keyFile(), 'utf8')).asymmetricKeyType).toBe('ed25519');
    // A database from before: the row's key moves into the file and is erased from the row.
    const legacy = crypto.generateKeyPairSync('ed25519');
    const legacyPublic = legacy.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    await collector.ctx.db
      .updateTable('keys')
      .set({ public_key: legacyPublic, private_key: legacy.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64') })
      .execute();
    await collector.stop();
    fs.rmSync(keyFile());
    collector = await createCollector({ db: dbUrl, logger: false, clock, keyFile: keyFile() });
    expect(collector.ctx.key.publicKey).toBe(legacyPublic);
    expect((await collector.ctx.db.selectFrom('keys').select('private_key').executeTakeFirstOrThrow()).private_key).toBe('');
    expect(fs.statSync(keyFile()).mode & 0o777).toBe(0o600);
    // A key file others may read is refused at start.
    await collector.stop();
    fs.chmodSync(keyFile(), 0o644);
    await expect(createCollector({ db: dbUrl, logger: false, clock, keyFile: keyFile() })).rejects.toThrow(/readable by others/);
    // A collector without the key file its agents pin is refused, rather than making another key.
    await expect(createCollector({ db: dbUrl, logger: false, clock, keyFile: path.join(keyDir, 'elsewhere.key') })).rejects.toThrow(/key is missing/);
    fs.chmodSync(keyFile(), 0o600);
    collector = await createCollector({ db: dbUrl, logger: false, clock, keyFile: keyFile() });
  });

  it.skipIf(skip)("key rotate re-signs every policy and agents move their pin only along the old key's signature", async () => {
    const agent = await enrolled();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-agent-'));
    const store = openEventStore(path.join(dir, 'agent.db'));
    try {
      const enrollment: Enrollment = {
        collectorUrl: 'http://127.0.0.1:1',
        agentId: agent.agentId,
        agentToken: agent.agentToken,
        segment: 'mynumber',
        collectorPublicKey: agent.collectorPublicKey,
        unlockSecret: agent.unlockSecret,
        enrolledAt: clock.now().toISOString(),
      };
      store.setState('enrollment', JSON.stringify(enrollment));
      const fetchPolicy = async () => (await inject({ method: 'GET', url: `/api/v1/agents/${agent.agentId}/policy`, token: agent.agentToken })).json();
      expect(acceptPolicy(store, await fetchPolicy(), enrollment)).toBe('applied');
      const rotated = await rotateSigningKey(collector.ctx.db, keyFile(), { username: 'cli:root', role: 'admin', address: 'host' });
      expect(rotated.previousPublicKey).toBe(agent.collectorPublicKey);
      expect(rotated.versions).toEqual({ mynumber: 2, lgwan: 2, internet: 2 });
      // The running collector signs with the new key from the file at once.
      expect(collector.ctx.key.publicKey).toBe(rotated.publicKey);
      const served = await fetchPolicy();
      expect(served.version).toBe(2);
      // Without the rotation statement the new signature is a forgery to this agent.
      expect(acceptPolicy(store, { ...served, rotations: [] }, enrollment)).toBe('rejected');
      // A statement not signed by the pinned key moves nothing.
      const other = crypto.generateKeyPairSync('ed25519');
      const bogus = { ...served.rotations[0], signature: crypto.sign(null, Buffer.from('x'), other.privateKey).toString('base64') };
      expect(acceptPolicy(store, { ...served, rotations: [bogus] }, enrollment)).toBe('rejected');
      expect(acceptPolicy(store, served, enrollment)).toBe('applied');
      const types = store.readSince(0).map((e) => e.type);
      expect(types.filter((t) => t === 'policy.key_rotated')).toHaveLength(1);
      expect(JSON.parse(store.getState('enrollment')!).collectorPublicKey).toBe(rotated.publicKey);
      expect(await collector.ctx.db.selectFrom('audit_log').select('action').where('action', '=', 'key.rotate').execute()).toHaveLength(1);
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(skip)("the unlock tool reads one terminal's secret by its tag (it loaded every secret)", async () => {
    const a = await enrolled('pc-a');
    await enrolled('pc-b');
    const code = makeRequestCode(a.agentId, { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }, crypto.randomBytes(5));
    // Every other secret made unreadable: the lookup must not touch those rows.
    await collector.ctx.db.updateTable('agents').set({ unlock_secret: 'not base64 !!' }).where('id', '!=', a.agentId).execute();
    const answer = await unlockCode(collector.ctx.db, code, 30, '0781:5581 serial 4C530001230101109473');
    expect(answer).toMatchObject({ agentId: a.agentId, hostname: 'pc-a' });
  });
});
