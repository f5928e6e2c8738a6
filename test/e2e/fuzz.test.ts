import crypto from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdmin, deleteAdmin } from '../../src/collector/admins';
import { createEnrollmentToken } from '../../src/collector/agents';
import { openCollectorDb, parseDbUrl } from '../../src/collector/db/connect';
import { BODY_LIMIT, createCollector } from '../../src/collector/server';
import { EVENT_TYPES, GENESIS_HASH, SEGMENTS, eventHash, fixedClock, makeRequestCode, verifyChain, type StoredEvent } from '../../src/shared';
import { consoleLogin, type ConsoleLogin } from '../helpers/console-login';
import { seedFleet, type Call, type SeededTerminal } from '../helpers/console-seed';
import { PG_URL, createEngineDatabase } from '../helpers/pg';
import { listRoutes, type RouteEntry } from '../helpers/routes';
import { encodeRequest, percent, send, sendBytes, utf8Bytes, type WireAnswer, type WireRequest } from '../helpers/wire';
import { freePort, requireBuild, startMamori, waitFor, type Running } from './helpers';

// A property-based fuzzer over every route the collector registers, against `mamori collector
// serve` (the built CLI) on 127.0.0.1, over real TCP. Any 5xx, any request left unanswered, a
// crash, an error in the collector's log, a damaged database or a broken or shortened event chain
// fails the run. MAMORI_FUZZ_REQUESTS (default 10,000) sets the count per database,
// MAMORI_FUZZ_SEED replays a run, MAMORI_TEST_DB picks the databases.

const COUNT = Number(process.env.MAMORI_FUZZ_REQUESTS ?? 10_000);
const SEED = process.env.MAMORI_FUZZ_SEED ? Number(process.env.MAMORI_FUZZ_SEED) : crypto.randomInt(2 ** 31);
/** Requests in flight at once. */
const LANES = 4;
const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
if (ENGINES.includes('postgres') && !PG_URL) console.warn('fuzz suite: PostgreSQL skipped (set MAMORI_TEST_PG_URL; CI always does)');
const PASSWORD = 'correct horse battery staple';
const FORM_LIMIT = 512 * 1024;

// ---- what the fuzzer knows: credentials, ids and each terminal's chain ----

interface Fixture {
  port: number;
  routes: RouteEntry[];
  agents: SeededTerminal[];
  /** The batches each terminal had accepted, newest last, to replay. */
  accepted: Map<string, StoredEvent[][]>;
  tokens: { admin: string; auditor: string; gone: string };
  sessions: { admin: ConsoleLogin; auditor: ConsoleLogin; gone: ConsoleLogin; expired: ConsoleLogin };
  enrollToken: string;
  incidents: string[];
  exceptions: string[];
  requestCodes: string[];
  /** Accounts the fuzzer may change or delete; its own are never named in a user action. */
  victims: string[];
}

// ---- hostile text ----

const NASTY = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '😀',
  '総務課',
  'ｱｲｳｴｵ',
  '\u202egnp.exe',
  '\r\n',
  '\t',
  '%',
  '%00',
  '%E3%81',
  '%ZZ',
  '%u0041',
  '..',
  '../../etc/passwd',
  '/',
  '//',
  '\\',
  '<script>alert(1)</script>',
  "' OR '1'='1",
  '"',
  '${1}',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-1',
  '0',
  '1',
  '1e309',
  '-0',
  '9007199254740993',
  '-9223372036854775809',
  '18446744073709551616',
  '0x10',
  '1.5',
  ' 1',
  '1 ',
  '[]',
  '{}',
  'true',
  'en',
  'ja',
  'lgwan',
  'mynumber',
  'internet',
  'csv',
  'xlsx',
  'json',
  'new',
  'investigating',
  'closed',
  'pending',
  'approved',
  'admin',
  'auditor',
  '2026-02-30',
  '9999-12-31',
  '0000-00-00',
  'Asia/Tokyo',
  'Mars/Olympus',
];
const text: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  { weight: 1, arbitrary: fc.constantFrom(1025, 4001, 20_000).map((n) => 'あ'.repeat(n)) },
);
const jsonLeaf: fc.Arbitrary<unknown> = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, true, false, 2 ** 53 + 1, -(2 ** 63), 1e308, -0, Number.MAX_SAFE_INTEGER),
  fc.constant([]),
  fc.constant({}),
);

// ---- recipes: what to send, resolved against the fixture when sent ----

const QUERY_KEYS = [
  'agentId',
  'type',
  'since',
  'limit',
  'status',
  'format',
  'segment',
  'lang',
  'q',
  'state',
  'seen',
  'sort',
  'page',
  'before',
  'from',
  'to',
  'actor',
  'action',
  'next',
  'addVendor',
  'addProduct',
  'addSerial',
  'x',
  '__proto__',
  'constructor',
];
const AUTHS = ['none', 'admin', 'auditor', 'agentOwn', 'agentOther', 'gone', 'garbage', 'nonAscii', 'huge', 'basic', 'empty', 'dup'] as const;
const COOKIES = ['none', 'admin', 'auditor', 'gone', 'expired', 'garbage', 'nonAscii', 'dup', 'huge', 'flash', 'prefs'] as const;
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'APPLICATION/JSON',
  '',
  'a/b/c;;;',
  'application/jsón',
  'application/json, text/html',
] as const;
const BODIES = ['valid', 'valid', 'valid', 'random', 'malformed', 'deep', 'form', 'badUtf8', 'empty', 'binary', 'huge'] as const;
const ENCODINGS = ['percent', 'percent', 'raw', 'broken'] as const;

const param = fc.record({ known: fc.boolean(), pick: fc.nat(), value: text, encoding: fc.constantFrom(...ENCODINGS) });
const routeRecipe = fc.record({
  kind: fc.constant('route' as const),
  route: fc.nat(),
  params: fc.array(param, { minLength: 3, maxLength: 3 }),
  query: fc.array(fc.record({ key: fc.oneof(fc.constantFrom(...QUERY_KEYS), text), value: text, encoding: fc.constantFrom(...ENCODINGS) }), { maxLength: 4 }),
  auth: fc.constantFrom(...AUTHS),
  cookie: fc.constantFrom(...COOKIES),
  contentType: fc.constantFrom(...CONTENT_TYPES),
  body: fc.constantFrom(...BODIES),
  mutation: fc.constantFrom('none', 'none', 'extraField', 'leaf', 'dupKey', 'proto', 'bom', 'truncate'),
  leaf: jsonLeaf,
  random: fc.jsonValue({ maxDepth: 4 }),
  depth: fc.constantFrom(64, 1_000, 10_000, 100_000),
  headers: fc.array(
    fc.record({
      name: fc.constantFrom('x-forwarded-for', 'origin', 'sec-fetch-site', 'accept-language', 'user-agent', 'x-ünï', 'accept', 'referer'),
      value: text,
    }),
    { maxLength: 3 },
  ),
  csrf: fc.constantFrom('valid', 'wrong', 'none'),
  seed: fc.nat(),
});
const batchRecipe = fc.record({
  kind: fc.constant('batch' as const),
  agent: fc.nat(),
  count: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constantFrom(50, 500, 501)),
  types: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
  strings: fc.array(text, { minLength: 4, maxLength: 4 }),
  mutation: fc.constantFrom(
    'none',
    'none',
    'none',
    'gap',
    'prevHash',
    'hash',
    'seqZero',
    'seqHuge',
    'seqFloat',
    'seqString',
    'at',
    'type',
    'extraField',
    'payload',
    'dupKey',
    'empty',
    'nul',
  ),
  auth: fc.constantFrom('own', 'own', 'own', 'other', 'none', 'admin'),
});
const replayRecipe = fc.record({ kind: fc.constant('replay' as const), agent: fc.nat(), back: fc.nat(), forge: fc.boolean() });
const inventoryRecipe = fc.record({
  kind: fc.constant('inventory' as const),
  agent: fc.nat(),
  strings: fc.array(text, { minLength: 4, maxLength: 4 }),
  mutation: fc.constantFrom('none', 'none', 'usbFlood', 'extraField', 'leaf', 'missing'),
  leaf: jsonLeaf,
});
const consoleRecipe = fc.record({
  kind: fc.constant('console' as const),
  route: fc.nat(),
  pick: fc.nat(),
  session: fc.constantFrom('admin', 'admin', 'auditor'),
  csrf: fc.constantFrom('valid', 'valid', 'valid', 'wrong', 'none'),
  fields: fc.array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'minutes',
          'requestCode',
          'status',
          'role',
          'password',
          'password2',
          'username',
          'mode',
          'syncIntervalSeconds',
          'incidentContact',
          'allow.0.vendorId',
          'allow.0.productId',
          'allow.0.serial',
          'allow.99999.note',
          'allow.0.remove',
          'document',
          'baseVersion',
          '_csrf',
          'next',
        ),
        text,
      ),
      text,
    ),
    { maxLength: 6 },
  ),
  dupFields: fc.boolean(),
  crossSite: fc.boolean(),
});
const loginRecipe = fc.record({
  kind: fc.constant('login' as const),
  username: fc.oneof(fc.constantFrom('fz-admin', 'nobody'), text),
  password: text,
  next: text,
  nonce: fc.constantFrom('valid', 'wrong', 'none'),
  addr: fc.nat(200),
});
const enrollRecipe = fc.record({ kind: fc.constant('enroll' as const), valid: fc.boolean(), hostname: text, machineId: text, extra: fc.boolean() });
const RAW_KINDS = [
  'nulPath',
  'nulHeader',
  'ctlHeader',
  'badHeaderName',
  'obsFold',
  'manyHeaders',
  'hugeHeader',
  'http10',
  'http2',
  'badVersion',
  'lowerMethod',
  'unknownMethod',
  'absoluteUrl',
  'asterisk',
  'badChunk',
  'teAndCl',
  'negativeCl',
  'dupCl',
  'shortBody',
  'expect',
  'upgrade',
  'utf8Path',
  'invalidUtf8Path',
  'pipelined',
  'noHost',
  'dupHost',
  'longPath',
] as const;
const rawRecipe = fc.record({ kind: fc.constant('raw' as const), raw: fc.constantFrom(...RAW_KINDS), route: fc.nat(), value: text });
const burstRecipe = fc.record({ kind: fc.constant('burst' as const), agent: fc.nat(), copies: fc.integer({ min: 2, max: 4 }) });

const recipe = fc.oneof(
  { weight: 40, arbitrary: routeRecipe },
  { weight: 14, arbitrary: batchRecipe },
  { weight: 4, arbitrary: replayRecipe },
  { weight: 4, arbitrary: inventoryRecipe },
  { weight: 16, arbitrary: consoleRecipe },
  { weight: 2, arbitrary: loginRecipe },
  { weight: 4, arbitrary: enrollRecipe },
  { weight: 8, arbitrary: rawRecipe },
  { weight: 2, arbitrary: burstRecipe },
);
type Recipe = typeof recipe extends fc.Arbitrary<infer T> ? T : never;

// ---- materializing a recipe ----

const at = <T>(list: readonly T[], i: number): T => list[i % list.length]!;
const addrOf = (i: number) => `127.0.${(i >> 8) & 255}.${i & 255 || 1}`;

function encodeText(value: string, encoding: (typeof ENCODINGS)[number]): string {
  if (encoding === 'percent') return percent(value);
  if (encoding === 'raw') return utf8Bytes(value).replace(/[\s#?]/g, (c) => percent(c));
  return `${percent(value)}%${'E3%8'.slice(0, value.length % 5)}`;
}

/** A payload for an event type, from hostile but schema-shaped strings. */
function payloadFor(type: string, s: string[], seq: number): unknown {
  const short = (i: number) => s[i % s.length]!.slice(0, 1000);
  const device = { vendorId: '0781', productId: '5581', serial: short(0), manufacturer: short(1), product: short(2), deviceClass: '08', port: short(3) };
  switch (type) {
    case 'agent.started':
      return { version: short(0), platform: 'linux', hostname: short(1) };
    case 'agent.stopped':
      return { reason: short(0) };
    case 'agent.warning':
      return { component: short(0), code: short(1), message: short(2), count: 1 };
    case 'policy.applied':
      return { segment: 'lgwan', version: seq, mode: 'block', enforcement: 'active' };
    case 'policy.drift_corrected':
      return { control: short(0), expected: short(1), found: short(2) };
    case 'tamper.detected':
      return { what: short(0), detail: short(1) };
    case 'device.attached':
    case 'device.detached':
      return device;
    case 'device.blocked':
    case 'device.allowed':
      return { ...device, reason: short(3), mode: 'block' };
    case 'exception.requested':
      return {
        requestId: `fz-${crypto.randomUUID()}`,
        requestCode: makeRequestCode(crypto.randomUUID(), { vendorId: '0781', productId: '5581', serial: '4C530001230101109473' }, crypto.randomBytes(5)),
        device: { vendorId: '0781', productId: '5581', serial: short(0) },
        reason: short(1),
        minutes: 60,
      };
    case 'exception.granted':
      return { requestId: short(0), device: {}, expiresAt: new Date(Date.now() + 3_600_000).toISOString(), via: 'unlock-code' };
    case 'exception.expired':
      return { requestId: short(0), device: {} };
    case 'system.boot':
    case 'system.shutdown':
      return { source: 'wtmp' };
    case 'incident.reported':
      return {
        receipt: `INC-FZ-${crypto.randomBytes(6).toString('hex')}`,
        category: 'other',
        description: short(0),
        contact: short(1),
        context: { hostname: short(2), osUser: short(3), inventoryHash: '0'.repeat(64), recentEvents: [] },
      };
    case 'inventory.changed':
      return { hash: 'a'.repeat(64), previousHash: null, changes: [{ section: short(0), summary: short(1) }] };
    default:
      return { user: short(0), source: 'security-log', logonType: 2, remoteHost: short(1) };
  }
}

/** A chained continuation of a terminal's log, as its agent would send it. */
function chainFrom(t: SeededTerminal, count: number, types: number[], strings: string[]): StoredEvent[] {
  const out: StoredEvent[] = [];
  let { seq, hash } = t.last;
  const base = Date.now() - 60_000;
  for (let i = 0; i < count; i++) {
    seq += 1;
    const type = at(EVENT_TYPES, at(types, i));
    const fields = { seq, at: new Date(base + i).toISOString(), type, payload: payloadFor(type, strings, seq) };
    // No agent can hash a lone surrogate (canonical JSON refuses it); a hostile one sends it anyway.
    let h: string;
    try {
      h = eventHash(hash, fields);
    } catch {
      h = 'e'.repeat(64);
    }
    out.push({ ...fields, prevHash: hash, hash: h } as StoredEvent);
    hash = h;
  }
  return out;
}

function serialize(value: unknown, mutation: string, leaf: unknown): Buffer {
  let body = value;
  if (mutation === 'extraField' && body && typeof body === 'object' && !Array.isArray(body)) body = { ...body, ünknown: leaf };
  if (mutation === 'leaf' && body && typeof body === 'object' && !Array.isArray(body)) {
    const keys = Object.keys(body);
    if (keys.length) body = { ...body, [keys[0]!]: leaf };
  }
  let json = JSON.stringify(body) ?? 'null';
  if (mutation === 'dupKey' && json.startsWith('{"')) {
    const key = /^\{"((?:[^"\\]|\\.)*)"/.exec(json)?.[1] ?? 'x';
    json = `{"${key}":${JSON.stringify(leaf) ?? 'null'},${json.slice(1)}`;
  }
  if (mutation === 'proto' && json.startsWith('{')) json = `{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},${json.slice(1)}`;
  if (mutation === 'bom') json = `\ufeff${json}`;
  if (mutation === 'truncate') json = json.slice(0, Math.max(1, Math.floor(json.length / 2)));
  return Buffer.from(json, 'utf8');
}

const MALFORMED = [
  '{',
  '{"a":',
  '[1,]',
  'nul',
  '{"a":1}{"b":2}',
  "{'a':1}",
  '{"a":NaN}',
  '{"a":1e999999}',
  '"\\ud800"',
  '{"a":"\\u00"}',
  '\u0000',
  '{"\u0000":1}',
  '1',
  '"x"',
  '[]',
  'null',
  'true',
];

interface Built {
  req: WireRequest;
  /** A terminal whose next state the answer decides. */
  onAnswer?: (a: WireAnswer) => void;
  /** Answers without a status are acceptable (the client closed mid-request). */
  mayGoUnanswered?: boolean;
  raw?: Buffer;
  halfClose?: boolean;
}

function makeBuilder(fx: Fixture) {
  const apiRoutes = fx.routes.filter((r) => r.method !== 'HEAD');
  const consolePosts = fx.routes.filter((r) => r.method === 'POST' && !r.url.startsWith('/api/') && r.url !== '/logout' && r.url !== '/login');

  const knownValue = (name: string, pick: number, agentId: string): string => {
    if (name === 'agentId') return agentId;
    if (name === 'segment') return at(SEGMENTS, pick);
    if (name === 'version') return at(['1', '2', '3', '0', '99999999999999999999'], pick);
    if (name === 'name') return at(fx.victims, pick);
    if (name === 'lang') return at(['en', 'ja'], pick);
    if (name === 'id') return at([...fx.incidents, ...fx.exceptions, ...fx.agents.map((a) => a.enrolled.agentId)], pick);
    if (name === '*') return at(['console.css', 'console.js', '../package.json', 'nope', '%2e%2e/%2e%2e/etc/passwd'], pick);
    return String(pick);
  };

  const authHeaders = (auth: string, ownAgent: SeededTerminal, other: SeededTerminal): [string, string][] => {
    switch (auth) {
      case 'admin':
        return [['Authorization', `Bearer ${fx.tokens.admin}`]];
      case 'auditor':
        return [['Authorization', `Bearer ${fx.tokens.auditor}`]];
      case 'agentOwn':
      case 'own':
        return [['Authorization', `Bearer ${ownAgent.enrolled.agentToken}`]];
      case 'agentOther':
      case 'other':
        return [['Authorization', `Bearer ${other.enrolled.agentToken}`]];
      case 'gone':
        return [['Authorization', `Bearer ${fx.tokens.gone}`]];
      case 'garbage':
        return [['Authorization', 'Bearer mam_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']];
      case 'nonAscii':
        return [['Authorization', `Bearer ${utf8Bytes('トークン😀')}`]];
      case 'huge':
        return [['Authorization', `Bearer ${'A'.repeat(12_000)}`]];
      case 'basic':
        return [['Authorization', 'Basic a2Fucmk6cGFzc3dvcmQ=']];
      case 'empty':
        return [['Authorization', 'Bearer ']];
      case 'dup':
        return [
          ['Authorization', `Bearer ${fx.tokens.auditor}`],
          ['Authorization', `Bearer ${fx.tokens.admin}`],
        ];
      default:
        return [];
    }
  };

  const cookieHeaders = (cookie: string, leaf: unknown): [string, string][] => {
    const s = fx.sessions;
    switch (cookie) {
      case 'admin':
        return [['Cookie', s.admin.cookie]];
      case 'auditor':
        return [['Cookie', s.auditor.cookie]];
      case 'gone':
        return [['Cookie', s.gone.cookie]];
      case 'expired':
        return [['Cookie', s.expired.cookie]];
      case 'garbage':
        return [['Cookie', 'mamori_sid=zzz; =; ;;; a']];
      case 'nonAscii':
        return [['Cookie', utf8Bytes(`mamori_sid=セッション; mamori_lang=日本`)]];
      case 'dup':
        return [
          ['Cookie', s.auditor.cookie],
          ['Cookie', `${s.admin.cookie}; ${s.auditor.cookie}`],
        ];
      case 'huge':
        return [['Cookie', `mamori_sid=${'x'.repeat(15_000)}`]];
      case 'flash': {
        const payload = Buffer.from(
          JSON.stringify({
            kind: 'ok',
            key: at(['login.expired', '__proto__', 'constructor', 'toString', 'nope', 'users.added'], JSON.stringify(leaf ?? '').length),
            vars: leaf,
          }),
        ).toString('base64url');
        return [['Cookie', `${s.admin.cookie}; mamori_flash=${payload}`]];
      }
      case 'prefs':
        return [['Cookie', `${s.admin.cookie}; mamori_lang=${percent(String(leaf))}; mamori_tz=${percent(String(leaf))}`]];
      default:
        return [];
    }
  };

  /** The body a route would normally take, before mutation. */
  const validBody = (route: RouteEntry, agent: SeededTerminal, r: Extract<Recipe, { kind: 'route' }>): unknown => {
    const key = `${route.method} ${route.url}`;
    if (key === 'POST /api/v1/enroll') return { token: r.seed % 2 ? fx.enrollToken : 'enr_nope', hostname: `FZ-${r.seed}`, machineId: String(r.leaf) };
    if (key === 'POST /api/v1/agents/:agentId/events') return { events: chainFrom(agent, 1 + (r.seed % 3), [r.seed], [String(r.leaf), 'a', 'b', 'c']) };
    if (key === 'PUT /api/v1/agents/:agentId/inventory') return inventoryOf(agent.hostname, [String(r.leaf), 'x', 'y', 'z']);
    if (key === 'PUT /api/v1/admin/policies/:segment')
      return {
        removableMedia: {
          mode: at(['block', 'readonly', 'audit', 'allow'], r.seed),
          allow: [{ vendorId: '0781', productId: '5581', serial: String(r.leaf).slice(0, 255) || 'S', note: 'fz' }],
        },
        syncIntervalSeconds: 300,
        incidentContact: 'fz',
      };
    if (key === 'PATCH /api/v1/admin/incidents/:id') return { status: at(['new', 'investigating', 'closed'], r.seed) };
    if (key.endsWith('/approve')) return { minutes: at([1, 30, 10_080, 10_081, 0], r.seed) };
    return {};
  };

  const buildRoute = (r: Extract<Recipe, { kind: 'route' }>): Built => {
    const route = at(apiRoutes.concat(fx.routes.filter((x) => x.method === 'HEAD')), r.route);
    const agent = at(fx.agents, r.seed);
    const other = at(fx.agents, r.seed + 1);
    let i = 0;
    const path = route.url.replace(/:(\w+)|\*/g, (m: string, name?: string) => {
      const p = r.params[i++ % r.params.length]!;
      return p.known ? encodeURIComponent(knownValue(name ?? '*', p.pick, agent.enrolled.agentId)).replace(/%2F/g, '/') : encodeText(p.value, p.encoding);
    });
    const query = r.query.map((q) => `${encodeText(q.key, q.encoding)}=${encodeText(q.value, q.encoding)}`).join('&');
    const headers: [string, string][] = [['Host', '127.0.0.1'], ...authHeaders(r.auth, agent, other), ...cookieHeaders(r.cookie, r.leaf)];
    for (const h of r.headers) headers.push([h.name, utf8Bytes(h.value).replace(/[\r\n\u0000]/g, ' ')]);
    let body: Buffer | undefined;
    const withBody = route.method !== 'GET' && route.method !== 'HEAD' ? true : r.body === 'binary';
    if (withBody) {
      const csrf =
        r.csrf === 'valid' ? (r.cookie === 'auditor' ? fx.sessions.auditor.csrf : fx.sessions.admin.csrf) : r.csrf === 'wrong' ? 'x'.repeat(32) : undefined;
      switch (r.body) {
        case 'valid': {
          const value = validBody(route, agent, r);
          body = route.url.startsWith('/api/')
            ? serialize(value, r.mutation, r.leaf)
            : Buffer.from(
                new URLSearchParams({
                  ...(csrf ? { _csrf: csrf } : {}),
                  ...Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, String(v)])),
                }).toString(),
              );
          break;
        }
        case 'random':
          body = serialize(r.random, r.mutation, r.leaf);
          break;
        case 'malformed':
          body = Buffer.from(at(MALFORMED, r.seed), 'utf8');
          break;
        case 'deep':
          body = Buffer.from(r.seed % 2 ? `${'['.repeat(r.depth)}${']'.repeat(r.depth)}` : `${'{"a":'.repeat(r.depth)}1${'}'.repeat(r.depth)}`);
          break;
        case 'form':
          body = Buffer.from(
            `${csrf ? `_csrf=${csrf}&` : ''}${r.query.map((q) => `${encodeText(q.key, q.encoding)}=${encodeText(q.value, q.encoding)}`).join('&')}&a=1&a=2&%ZZ=%E3%81&__proto__[x]=1`,
            'latin1',
          );
          break;
        case 'badUtf8':
          body = Buffer.concat([
            Buffer.from('{"token":"'),
            Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80]),
            Buffer.from('","_csrf":"x"}'),
          ]);
          break;
        case 'empty':
          body = Buffer.alloc(0);
          break;
        case 'binary':
          body = crypto.randomBytes(1 + (r.seed % 2048));
          break;
        case 'huge': {
          const limit = route.url.startsWith('/api/') ? BODY_LIMIT : FORM_LIMIT;
          const size = limit + (r.seed % 2 ? 1 : -64);
          body = r.contentType.includes('form') ? Buffer.from(`a=${'b'.repeat(size - 2)}`) : Buffer.from(`{"a":"${'b'.repeat(size - 8)}"}`);
          break;
        }
      }
      if (r.contentType) headers.push(['Content-Type', utf8Bytes(r.contentType)]);
    }
    return { req: { method: route.method, path: `${path}${query ? `?${query}` : ''}`, headers, body, localAddress: addrOf(r.seed % 250) } };
  };

  /** Updates the terminal's chain when the collector acknowledged a batch. */
  const acknowledge = (t: SeededTerminal, events: StoredEvent[]) => (a: WireAnswer) => {
    if (a.status !== 200) return;
    const ack = (JSON.parse(a.body.toString('utf8')) as { ackSeq: number }).ackSeq;
    const last = events.find((e) => e.seq === ack);
    if (ack > t.last.seq && last) {
      t.last = { seq: last.seq, hash: last.hash };
      const list = fx.accepted.get(t.enrolled.agentId) ?? [];
      list.push(events.filter((e) => e.seq <= ack));
      if (list.length > 8) list.shift();
      fx.accepted.set(t.enrolled.agentId, list);
    }
  };

  const buildBatch = (r: Extract<Recipe, { kind: 'batch' }>): Built => {
    const t = at(fx.agents, r.agent);
    const events: unknown[] = chainFrom(t, r.count, r.types, r.strings);
    const first = events[0] as Record<string, unknown>;
    let json: string | undefined;
    switch (r.mutation) {
      case 'gap':
        (events as StoredEvent[]).splice(
          Math.min(1, events.length - 1),
          1,
          ...(events.length === 1 ? [{ ...(first as StoredEvent), seq: t.last.seq + 2 }] : []),
        );
        break;
      case 'prevHash':
        first.prevHash = 'a'.repeat(64);
        break;
      case 'hash':
        (events[events.length - 1] as Record<string, unknown>).hash = '0'.repeat(64);
        break;
      case 'seqZero':
        first.seq = 0;
        break;
      case 'seqHuge':
        first.seq = at([2 ** 53, 2 ** 53 + 2, 1e308, -1, 2 ** 31, 2 ** 63], r.count);
        break;
      case 'seqFloat':
        first.seq = t.last.seq + 0.5;
        break;
      case 'seqString':
        first.seq = String(t.last.seq + 1);
        break;
      case 'at':
        first.at = r.strings[0];
        break;
      case 'type':
        first.type = r.strings[1];
        break;
      case 'extraField':
        first[r.strings[2] || 'x'] = 1;
        break;
      case 'payload':
        first.payload = { junk: r.strings[3], nested: [[[r.strings[0]]]] };
        break;
      case 'dupKey':
        json = JSON.stringify({ events }).replace('"seq":', `"seq":${t.last.seq + 7},"seq":`);
        break;
      case 'empty':
        json = '{"events":[]}';
        break;
      case 'nul':
        json = JSON.stringify({ events }).replace('"payload":{', '"payload":{"\\u0000":"\\u0000",');
        break;
    }
    const other = at(fx.agents, r.agent + 1);
    const headers: [string, string][] = [['Host', '127.0.0.1'], ['Content-Type', 'application/json'], ...authHeaders(r.auth, t, other)];
    if (r.auth === 'admin') headers.splice(2, 1, ['Authorization', `Bearer ${fx.tokens.admin}`]);
    return {
      req: {
        method: 'POST',
        path: `/api/v1/agents/${t.enrolled.agentId}/events`,
        headers,
        body: Buffer.from(json ?? JSON.stringify({ events }), 'utf8'),
        localAddress: addrOf(r.agent % 250),
      },
      onAnswer: r.auth === 'own' ? acknowledge(t, events as StoredEvent[]) : undefined,
    };
  };

  const buildReplay = (r: Extract<Recipe, { kind: 'replay' }>): Built => {
    const t = at(fx.agents, r.agent);
    const list = fx.accepted.get(t.enrolled.agentId) ?? [];
    const batch = list.length ? structuredClone(at(list, r.back)) : chainFrom(t, 1, [0], ['a', 'b', 'c', 'd']);
    if (r.forge && list.length) {
      const e = batch[batch.length - 1]!;
      e.payload = { reason: 'rewritten history' };
      e.type = 'agent.stopped';
      e.hash = eventHash(e.prevHash, e);
    }
    return {
      req: {
        method: 'POST',
        path: `/api/v1/agents/${t.enrolled.agentId}/events`,
        headers: [
          ['Host', '127.0.0.1'],
          ['Content-Type', 'application/json'],
          ['Authorization', `Bearer ${t.enrolled.agentToken}`],
        ],
        body: Buffer.from(JSON.stringify({ events: batch })),
        localAddress: addrOf(r.agent % 250),
      },
      onAnswer: list.length ? undefined : acknowledge(t, batch),
    };
  };

  const buildInventory = (r: Extract<Recipe, { kind: 'inventory' }>): Built => {
    const t = at(fx.agents, r.agent);
    const inv = inventoryOf(t.hostname, r.strings) as Record<string, unknown>;
    if (r.mutation === 'usbFlood') inv.usb = Array.from({ length: 2_000 }, (_, i) => ({ ...(inv.usb as object[])[0], port: `1-${i}` }));
    if (r.mutation === 'extraField') (inv.system as Record<string, unknown>).ünknown = r.leaf;
    if (r.mutation === 'leaf') inv.hostname = r.leaf;
    if (r.mutation === 'missing') delete inv.os;
    return {
      req: {
        method: 'PUT',
        path: `/api/v1/agents/${t.enrolled.agentId}/inventory`,
        headers: [
          ['Host', '127.0.0.1'],
          ['Content-Type', 'application/json'],
          ['Authorization', `Bearer ${t.enrolled.agentToken}`],
        ],
        body: Buffer.from(JSON.stringify(inv)),
        localAddress: addrOf(r.agent % 250),
      },
    };
  };

  const buildConsole = (r: Extract<Recipe, { kind: 'console' }>): Built => {
    const route = at(consolePosts, r.route);
    const session = fx.sessions[r.session];
    const path = route.url.replace(/:(\w+)/g, (_m, name: string) =>
      encodeURIComponent(
        name === 'id'
          ? at([...fx.incidents, ...fx.exceptions, ...fx.agents.map((a) => a.enrolled.agentId), 'nope'], r.pick)
          : name === 'name'
            ? at([...fx.victims, 'nobody'], r.pick)
            : name === 'segment'
              ? at([...SEGMENTS, 'nope'], r.pick)
              : '1',
      ),
    );
    const form = new URLSearchParams();
    if (r.csrf !== 'none') form.append('_csrf', r.csrf === 'valid' ? session.csrf : 'A'.repeat(32));
    // Plausible fields first, then the hostile ones.
    if (route.url.endsWith('/approve') || route.url.endsWith('/unlock')) form.append('minutes', at(['60', '0', '10080', '10081', '1.5', 'abc'], r.pick));
    if (route.url.endsWith('/unlock')) form.append('requestCode', at([...fx.requestCodes, 'AAAA-AAAA-AAAAA', 'ＡＡＡＡ'], r.pick));
    if (route.url.endsWith('/status')) form.append('status', at(['new', 'investigating', 'closed', 'x'], r.pick));
    if (route.url.endsWith('/role')) form.append('role', at(['admin', 'auditor', 'root'], r.pick));
    if (route.url === '/users')
      for (const [k, v] of [
        ['username', `fz-${r.pick}`],
        ['role', 'auditor'],
        ['password', PASSWORD],
        ['password2', PASSWORD],
      ])
        form.append(k!, v!);
    if (route.url.startsWith('/policies/')) {
      form.append('mode', at(['block', 'readonly', 'audit', 'allow', ''], r.pick));
      form.append('syncIntervalSeconds', at(['300', '9', '86401', 'x'], r.pick));
      form.append('allow.0.vendorId', '0781');
      form.append('allow.0.productId', '5581');
      form.append(
        'document',
        JSON.stringify({ segment: at(SEGMENTS, r.pick), removableMedia: { mode: 'block', allow: [] }, syncIntervalSeconds: 300, incidentContact: '' }),
      );
      form.append('baseVersion', String(r.pick % 4));
    }
    for (const [k, v] of r.fields) {
      form.append(k, v);
      if (r.dupFields) form.append(k, v);
    }
    const headers: [string, string][] = [
      ['Host', '127.0.0.1'],
      ['Cookie', session.cookie],
      ['Content-Type', 'application/x-www-form-urlencoded'],
    ];
    if (r.crossSite) headers.push(['Origin', 'http://evil.example']);
    return { req: { method: 'POST', path, headers, body: Buffer.from(form.toString()), localAddress: addrOf(r.pick % 250) } };
  };

  const buildLogin = (r: Extract<Recipe, { kind: 'login' }>): Built => {
    const nonce = 'N'.repeat(32);
    const form = new URLSearchParams({ username: r.username, password: r.password, next: r.next });
    if (r.nonce !== 'none') form.append('_csrf', r.nonce === 'valid' ? nonce : 'M'.repeat(32));
    return {
      req: {
        method: 'POST',
        path: '/login',
        headers: [
          ['Host', '127.0.0.1'],
          ['Cookie', `mamori_login=${nonce}`],
          ['Content-Type', 'application/x-www-form-urlencoded'],
        ],
        body: Buffer.from(form.toString()),
        localAddress: addrOf(10 + r.addr),
      },
    };
  };

  const buildEnroll = (r: Extract<Recipe, { kind: 'enroll' }>): Built => {
    const body: Record<string, unknown> = { token: r.valid ? fx.enrollToken : 'enr_AAAA', hostname: r.hostname, machineId: r.machineId || 'm' };
    if (r.extra) body.ünknown = r.hostname;
    return {
      req: {
        method: 'POST',
        path: '/api/v1/enroll',
        headers: [
          ['Host', '127.0.0.1'],
          ['Content-Type', 'application/json'],
        ],
        body: Buffer.from(JSON.stringify(body)),
        localAddress: addrOf(r.hostname.length % 250),
      },
    };
  };

  const buildRaw = (r: Extract<Recipe, { kind: 'raw' }>): Built => {
    const route = at(fx.routes, r.route);
    const path = route.url.replace(/:(\w+)|\*/g, 'x');
    const line = (method: string, target: string, version = 'HTTP/1.1') => `${method} ${target} ${version}\r\n`;
    const host = 'Host: 127.0.0.1\r\n';
    const close = 'Connection: close\r\n';
    const v = utf8Bytes(r.value);
    const raws: Record<(typeof RAW_KINDS)[number], string> = {
      nulPath: `${line('GET', `${path}\u0000x`)}${host}${close}\r\n`,
      nulHeader: `${line('GET', path)}${host}X-A: a\u0000b\r\n${close}\r\n`,
      ctlHeader: `${line('GET', path)}${host}X-A: \u0001\u001b[31m\r\n${close}\r\n`,
      badHeaderName: `${line('GET', path)}${host}X A(): 1\r\n${close}\r\n`,
      obsFold: `${line('GET', path)}${host}X-A: 1\r\n  continued\r\n${close}\r\n`,
      manyHeaders: `${line('GET', path)}${host}${Array.from({ length: 3_000 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}${close}\r\n`,
      hugeHeader: `${line('GET', path)}${host}X-A: ${'a'.repeat(20_000)}\r\n${close}\r\n`,
      http10: `${line('GET', path, 'HTTP/1.0')}\r\n`,
      http2: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
      badVersion: `${line('GET', path, 'HTTP/9.9')}${host}${close}\r\n`,
      lowerMethod: `${line('get', path)}${host}${close}\r\n`,
      unknownMethod: `${line('BREW', path)}${host}${close}\r\n`,
      absoluteUrl: `${line('GET', `http://evil.example${path}`)}${host}${close}\r\n`,
      asterisk: `${line('OPTIONS', '*')}${host}${close}\r\n`,
      badChunk: `${line('POST', path)}${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n${close}\r\nzz\r\n{}\r\n0\r\n\r\n`,
      teAndCl: `${line('POST', path)}${host}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n${close}\r\n2\r\n{}\r\n0\r\n\r\n`,
      negativeCl: `${line('POST', path)}${host}Content-Type: application/json\r\nContent-Length: -1\r\n${close}\r\n{}`,
      dupCl: `${line('POST', path)}${host}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n${close}\r\n{}`,
      shortBody: `${line('POST', path)}${host}Content-Type: application/json\r\nContent-Length: 100\r\n${close}\r\n{"a":`,
      expect: `${line('POST', path)}${host}Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n${close}\r\n{}`,
      upgrade: `${line('GET', path)}${host}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      utf8Path: `${line('GET', `${path}/${v}?q=${v}`.replace(/[\s]/g, '_'))}${host}X-Ü: ${v.replace(/[\r\n]/g, '')}\r\n${close}\r\n`,
      invalidUtf8Path: `${line('GET', `${path}?q=\u00ff\u00fe\u00c3\u0028&next=/\u00ed\u00a0\u0080`)}${host}${close}\r\n`,
      pipelined: `${line('GET', '/healthz')}${host}\r\n${line('GET', path)}${host}${close}\r\n`,
      noHost: `${line('GET', path)}${close}\r\n`,
      dupHost: `${line('GET', path)}${host}Host: evil.example\r\n${close}\r\n`,
      longPath: `${line('GET', `${path}?q=${'a'.repeat(70_000)}`)}${host}${close}\r\n`,
    };
    // A request cut short by the client (it closes mid-body) may get no answer: nobody is left to read it.
    return {
      req: { method: 'GET', path, headers: [] },
      raw: Buffer.from(raws[r.raw], 'latin1'),
      halfClose: r.raw === 'shortBody',
      mayGoUnanswered: r.raw === 'shortBody',
    };
  };

  return (r: Recipe): Built | Built[] => {
    switch (r.kind) {
      case 'route':
        return buildRoute(r);
      case 'batch':
        return buildBatch(r);
      case 'replay':
        return buildReplay(r);
      case 'inventory':
        return buildInventory(r);
      case 'console':
        return buildConsole(r);
      case 'login':
        return buildLogin(r);
      case 'enroll':
        return buildEnroll(r);
      case 'raw':
        return buildRaw(r);
      case 'burst': {
        // The same batch several times at once: stored once, the others skipped or refused.
        const t = at(fx.agents, r.agent);
        const events = chainFrom(t, 3, [0, 5, 14], ['burst', 'b', 'c', 'd']);
        return Array.from({ length: r.copies }, () => ({
          req: {
            method: 'POST',
            path: `/api/v1/agents/${t.enrolled.agentId}/events`,
            headers: [
              ['Host', '127.0.0.1'],
              ['Content-Type', 'application/json'],
              ['Authorization', `Bearer ${t.enrolled.agentToken}`],
            ] as [string, string][],
            body: Buffer.from(JSON.stringify({ events })),
            localAddress: addrOf(r.agent % 250),
          },
          onAnswer: acknowledge(t, events),
        }));
      }
    }
  };
}

function inventoryOf(hostname: string, s: string[]): unknown {
  const short = (i: number) => s[i % s.length]!.slice(0, 200);
  return {
    collectedAt: new Date().toISOString(),
    agentVersion: '0.1.0',
    hostname,
    system: { manufacturer: short(0), model: short(1), serial: short(2), uuid: crypto.randomUUID() },
    bios: { vendor: short(3), version: 'V1', releaseDate: '2025-04-01' },
    os: { platform: 'linux', distro: short(0), release: '6.1', kernel: '6.1.0', arch: 'x64' },
    cpu: { manufacturer: 'Intel', brand: short(1), cores: 4, physicalCores: 4 },
    memory: { totalBytes: 8 * 1024 ** 3 },
    disks: [],
    network: [{ iface: short(2), mac: '00:1a:2b:3c:4d:5e', ipv4: ['10.0.0.1'], ipv6: [], internal: false, virtual: false }],
    users: [],
    usb: [
      {
        port: '1-2',
        vendorId: '0781',
        productId: '5581',
        serial: short(3),
        manufacturer: short(0),
        product: short(1),
        deviceClass: '00',
        interfaces: [],
        authorized: true,
        rootHub: false,
      },
    ],
    enforcement: 'active',
    warnings: [],
  };
}

/** What a 5xx, an unanswered request or a dead collector looked like, for the report. */
interface Finding {
  what: string;
  recipe: string;
  request: string;
  answer: string;
}

describe.each(ENGINES)('the fuzzer on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  let fx: Fixture;
  let proc: Running;
  let dbUrl: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    if (skip) return;
    requireBuild();
    ({ url: dbUrl, drop } = await createEngineDatabase(engine, 'mamori-fuzz-'));
    // Seeded in process (fast, and the route list comes from the very app the CLI builds), then
    // served by the CLI on the same database.
    const clock = fixedClock(new Date());
    const seeder = await createCollector({ db: dbUrl, logger: false, clock, rateLimits: { enrollPerAddress: { max: 10_000, windowMs: 60_000 } } });
    const routes = await listRoutes(seeder.app);
    const db = seeder.ctx.db;
    const admin = await addAdmin(db, 'fz-admin', 'admin', PASSWORD);
    const auditor = await addAdmin(db, 'fz-auditor', 'auditor', PASSWORD);
    const gone = await addAdmin(db, 'fz-gone', 'admin', PASSWORD);
    const victims = ['victim-1', 'victim-2', 'victim-3', 'victim-4'];
    for (const v of victims) await addAdmin(db, v, 'auditor', PASSWORD);
    const sessions = {
      admin: await consoleLogin(seeder, 'fz-admin', PASSWORD),
      auditor: await consoleLogin(seeder, 'fz-auditor', PASSWORD),
      gone: await consoleLogin(seeder, 'fz-gone', PASSWORD),
      expired: undefined as unknown as ConsoleLogin,
    };
    // A session opened 13 hours ago is past the 12-hour limit when the CLI reads it.
    clock.set(new Date(Date.now() - 13 * 3_600_000));
    sessions.expired = await consoleLogin(seeder, 'victim-1', PASSWORD);
    clock.set(new Date());
    await deleteAdmin(db, 'fz-gone', 'fz-admin');
    const call: Call = async (method, u, opts = {}) => {
      const res = await seeder.app.inject({
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
    const seeded = await seedFleet(call, (segment) => createEnrollmentToken(db, { segment, ttlMs: 3_600_000, uses: 1 }, clock));
    const enrollToken = await createEnrollmentToken(db, { segment: 'lgwan', ttlMs: 3 * 3_600_000, uses: 100_000 }, clock);
    const exceptionRows = await db.selectFrom('exceptions').select(['request_id', 'request_code']).execute();
    await seeder.stop();

    const port = await freePort();
    proc = startMamori(['collector', 'serve', '--listen', `127.0.0.1:${port}`, '--db', dbUrl], { MAMORI_LOG_LEVEL: 'warn' });
    await waitFor(() => proc.output().includes('listening on'), 'the collector to listen');
    fx = {
      port,
      routes,
      agents: seeded.terminals,
      accepted: new Map(),
      tokens: { admin, auditor, gone },
      sessions,
      enrollToken,
      incidents: seeded.incidentReceipts,
      exceptions: exceptionRows.map((r) => r.request_id),
      requestCodes: exceptionRows.map((r) => r.request_code),
      victims,
    };
  });
  afterAll(async () => {
    if (skip) return;
    if (proc) await proc.stop('SIGKILL');
    await drop?.();
  });

  it.skipIf(skip)(`${COUNT} requests over every route give no 5xx, no crash, no partial write`, { timeout: 15 * 60_000 }, async () => {
    const build = makeBuilder(fx);
    const recipes = fc.sample(recipe, { numRuns: COUNT, seed: SEED });
    const findings: Finding[] = [];
    const statuses = new Map<string, number>();
    const byKind = new Map<string, number>();
    const slowest: { ms: number; what: string }[] = [];
    let sent = 0;
    let resetWhileSending = 0;
    const started = performance.now();
    const describeReq = (b: Built) => {
      const bytes =
        b.raw ??
        Buffer.concat([
          Buffer.from(`${b.req.method} ${b.req.path}\r\n${b.req.headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`, 'latin1'),
          b.req.body ?? Buffer.alloc(0),
        ]);
      return bytes.subarray(0, 600).toString('latin1') + (bytes.length > 600 ? `… (${bytes.length} bytes)` : '');
    };
    const one = async (r: Recipe, b: Built) => {
      // An upgrade answered without upgrading keeps its connection open: the status is enough.
      const answer = b.raw
        ? await sendBytes(fx.port, b.raw, {
            localAddress: b.req.localAddress,
            halfClose: b.halfClose,
            timeoutMs: r.kind === 'raw' && r.raw === 'upgrade' ? 1_000 : undefined,
          })
        : await send(fx.port, b.req);
      sent += 1;
      slowest.push({ ms: answer.ms, what: `${r.kind}/${'raw' in r ? r.raw : ''} ${b.req.method} ${b.req.path.slice(0, 80)} → ${answer.status}` });
      slowest.sort((x, y) => y.ms - x.ms);
      slowest.length = Math.min(slowest.length, 5);
      const key = answer.status === null ? 'none' : `${answer.status}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (answer.status !== null && answer.status >= 500)
        findings.push({
          what: `${answer.status}`,
          recipe: JSON.stringify(r).slice(0, 400),
          request: describeReq(b),
          answer: answer.body.subarray(0, 300).toString('utf8'),
        });
      // The collector may refuse a request before reading its body (a head over Node's 16 KiB
      // limit, a wrong token, an unknown path) and close; a large body still being sent then makes
      // the kernel reset the connection, which can discard the answer before it is read. Such
      // resets are counted, not failed: a 5xx behind one still shows in the collector's log.
      const bytes = b.raw ?? encodeRequest(b.req);
      const head = bytes.indexOf('\r\n\r\n');
      const large = head < 0 || head > 16 * 1024 || bytes.length - head > 64 * 1024;
      if (answer.status === null && large && /ECONNRESET|EPIPE/.test(answer.error ?? '')) resetWhileSending += 1;
      else if (answer.status === null && !b.mayGoUnanswered)
        findings.push({ what: `no answer (${answer.error ?? 'closed'})`, recipe: JSON.stringify(r).slice(0, 400), request: describeReq(b), answer: '' });
      b.onAnswer?.(answer);
    };
    let next = 0;
    const lane = async () => {
      while (next < recipes.length && proc.child.exitCode === null && findings.length < 50) {
        const r = recipes[next++]!;
        byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
        const built = build(r);
        if (Array.isArray(built)) await Promise.all(built.map((b) => one(r, b)));
        else await one(r, built);
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    const seconds = (performance.now() - started) / 1000;
    const alive = proc.child.exitCode === null && proc.child.signalCode === null;
    console.log(
      `fuzz on ${engine} (seed ${SEED}): ${sent} requests from ${recipes.length} recipes in ${seconds.toFixed(1)} s; ` +
        `recipes ${JSON.stringify(Object.fromEntries(byKind))}; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; ${resetWhileSending} large requests reset after an early refusal; ${findings.length} findings`,
    );
    console.log(`slowest: ${slowest.map((x) => `${x.ms.toFixed(0)} ms ${x.what}`).join('; ')}`);
    for (const f of findings.slice(0, 10))
      console.log(`FINDING ${f.what}\n  recipe: ${f.recipe}\n  request: ${JSON.stringify(f.request)}\n  answer: ${f.answer}`);

    // The collector must still be up, stop cleanly, and have logged no error.
    expect(alive, `collector exited: ${proc.output().slice(-2000)}`).toBe(true);
    expect(await proc.stop('SIGTERM')).toBe(0);
    const errors = proc
      .output()
      .split('\n')
      .filter((l) => /"level":(50|60)/.test(l));
    expect(errors.slice(0, 5), `errors in the collector's log`).toEqual([]);
    expect(findings.map((f) => `${f.what}: ${f.request.split('\r\n')[0]}`)).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(COUNT);

    // Nothing half-written: the database is sound, every chain verifies from its first event up to
    // the acknowledged seq, and every batch the fuzzer saw acknowledged is there.
    const handle = await openCollectorDb(parseDbUrl(dbUrl));
    try {
      if (engine === 'sqlite') {
        const check = await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(handle.db);
        expect(check.rows.map((r) => r.integrity_check)).toEqual(['ok']);
        const fk = await sql`PRAGMA foreign_key_check`.execute(handle.db);
        expect(fk.rows).toEqual([]);
      }
      const agents = await handle.db.selectFrom('agents').select(['id', 'ack_seq', 'last_hash']).execute();
      for (const a of agents) {
        const events = await handle.db.selectFrom('events').selectAll().where('agent_id', '=', a.id).orderBy('seq').execute();
        const chain = events.map((e) => ({
          seq: Number(e.seq),
          at: e.at,
          type: e.type,
          payload: JSON.parse(e.payload) as unknown,
          prevHash: e.prev_hash,
          hash: e.hash,
        }));
        expect(
          chain.map((e) => e.seq),
          `agent ${a.id}`,
        ).toEqual(Array.from({ length: Number(a.ack_seq) }, (_, i) => i + 1));
        expect(verifyChain(chain as StoredEvent[], { seq: 0, hash: GENESIS_HASH }), `agent ${a.id}`).toBeNull();
        expect(chain.length ? chain[chain.length - 1]!.hash : GENESIS_HASH).toBe(a.last_hash);
      }
      for (const t of fx.agents) {
        const row = agents.find((a) => a.id === t.enrolled.agentId)!;
        expect({ seq: Number(row.ack_seq), hash: row.last_hash }, t.hostname).toEqual(t.last);
      }
      // Side tables point at stored events of their kind.
      const orphanIncidents = await handle.db
        .selectFrom('incidents')
        .leftJoin('events', (j) => j.onRef('events.agent_id', '=', 'incidents.agent_id').onRef('events.seq', '=', 'incidents.seq'))
        .select(['incidents.receipt', 'events.type'])
        .execute();
      expect(orphanIncidents.filter((r) => r.type !== 'incident.reported')).toEqual([]);
    } finally {
      await handle.destroy();
    }
  });
});
