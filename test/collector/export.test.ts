import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { isUtf8 } from 'node:buffer';
import zlib from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import type { Insertable } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentsTable } from '../../src/collector/db/schema';
import { LEDGER_COLUMNS, headers, type LedgerRow } from '../../src/collector/export/columns';
import { ledgerCsv, writeLedgerCsv } from '../../src/collector/export/csv';
import { LEDGER_PAGE_SIZE, ledgerRowBatches, ledgerRows } from '../../src/collector/export/ledger';
import { XLSX_CELL_MAX, displayWidth, writeLedgerXlsx } from '../../src/collector/export/xlsx';
import { storeInventory } from '../../src/collector/agents';
import { openCollectorDb, parseDbUrl, type CollectorDb } from '../../src/collector/db/connect';
import type { InventorySnapshot } from '../../src/shared';
import { PG_URL, createEngineDatabase } from '../helpers/pg';

const ENGINES = (process.env.MAMORI_TEST_DB ?? 'sqlite,postgres').split(',');
if (ENGINES.includes('postgres') && !PG_URL) {
  console.warn('export suite: PostgreSQL skipped (set MAMORI_TEST_PG_URL; CI always does)');
}

/** The export's clock: blocked_7d counts from 2026-11-17T03:04:05.678Z. */
const AT = new Date('2026-11-24T03:04:05.678Z');
const DAY = 24 * 3600 * 1000;
const FLEET = 1203;

const SURROGATE = 'lone \ud800 surrogate';
/** Hostile strings a terminal can report, and the cell an auditor must see for each. */
const HOSTILE: [input: string, shown: string][] = [
  ['=HYPERLINK("http://evil.example/","x")', `'=HYPERLINK("http://evil.example/","x")`],
  ["+cmd|' /C calc'!A0", `'+cmd|' /C calc'!A0`],
  ['-2+3', `'-2+3`],
  ['@SUM(1,1)', `'@SUM(1,1)`],
  ['\tTAB', `'\tTAB`],
  ['\rCR', `'\rCR`],
  ['<script>alert(1)</script>', '<script>alert(1)</script>'],
  ['改行\r\nあり, "引用"', '改行\r\nあり, "引用"'],
  ['\u0001\u0007\u001b[31m', '[31m'],
  [SURROGATE, 'lone  surrogate'],
  ['\ufffe\uffffnon-characters\u0000', 'non-characters'],
  // A control character must not hide a formula from the check.
  ['\u0001=1+1', `'=1+1`],
];
/** The fleet, the hostile terminals and two with odd snapshots (see seed). */
const TOTAL = FLEET + HOSTILE.length + 2;
/** Characters XML 1.0 forbids; one of them makes Excel refuse the file. */
const XML_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const FORMULA_START = /^[=+\-@\t\r]/;
const col = (key: string) => LEDGER_COLUMNS.findIndex((c) => c.key === key);

function snapshot(hostname: string, hostile?: string): InventorySnapshot {
  return {
    collectedAt: '2026-11-23T00:00:00.000Z',
    agentVersion: '0.1.0',
    hostname,
    system: { manufacturer: hostile ?? 'FUJITSU', model: 'ESPRIMO D588', serial: 'YMAB012345', uuid: 'u-1' },
    bios: { vendor: 'FUJITSU', version: '1.2', releaseDate: '2024-01-01' },
    os: { platform: 'win32', distro: 'Microsoft Windows 11 Pro', release: '10.0.22631', kernel: '10.0.22631', arch: 'x64' },
    cpu: { manufacturer: 'Intel', brand: 'Core i5-8500', cores: 6, physicalCores: 6 },
    memory: { totalBytes: 16 * 1024 ** 3 },
    disks: [
      { device: 'disk0', type: 'SSD', name: 'Samsung SSD 870', vendor: 'Samsung', serial: 'S5Y1NX0R', sizeBytes: 500 * 1024 ** 3, interfaceType: 'SATA' },
    ],
    network: [{ iface: 'Ethernet', mac: '00:11:22:33:44:55', ipv4: ['10.20.30.40'], ipv6: [], internal: false, virtual: false }],
    users: [],
    usb: [
      {
        port: '1-2',
        vendorId: '0781',
        productId: '5581',
        serial: hostile ?? '4C530001230101109473',
        manufacturer: hostile ?? 'SanDisk',
        product: hostile ?? 'Ultra',
        deviceClass: '00',
        interfaces: [],
        authorized: false,
        rootHub: false,
      },
    ],
    enforcement: 'active',
    warnings: [],
  };
}

/** An agents row with nothing notable, for tests that add a terminal of their own. */
function agentFixture(id: string): Insertable<AgentsTable> {
  return {
    id,
    hostname: id,
    machine_id: id,
    segment: 'lgwan',
    token_hash: 'x',
    unlock_secret: 'x',
    enrolled_at: '2026-01-01T00:00:00.000Z',
    last_seen: null,
    ack_seq: 0,
    last_hash: 'x',
    chain_broken_seq: null,
    policy_version: 1,
    enforcement: 'active',
    agent_version: '0.1.0',
    last_user: 'staff',
  };
}

interface Seeded {
  /** agent id → what its ledger row must say. */
  expected: Map<string, { blocked: number; lastSeen: string | null; segment: string; hostile?: [string, string] }>;
}

/**
 * 1,203 terminals over three pages (a hundred per host name, so that equal names straddle both page
 * breaks whatever the engine's collation does with the others; inserted out of order; every 7th
 * without inventory), plus one 'internet' terminal per hostile string and two with odd snapshots.
 * device.blocked events inside and outside the 7 days, and other types that must not count.
 */
async function seed(db: CollectorDb['db']): Promise<Seeded> {
  const expected: Seeded['expected'] = new Map();
  const agents: Insertable<AgentsTable>[] = [];
  const inventory: { agent_id: string; hash: string; snapshot: string; received_at: string }[] = [];
  const events: { agent_id: string; seq: number; at: string; type: string; payload: string; prev_hash: string; hash: string; received_at: string }[] = [];
  const agentRow = (id: string, hostname: string, segment: string, i: number, lastUser: string): Insertable<AgentsTable> & { last_seen: string | null } => ({
    id,
    hostname,
    machine_id: `m-${i}`,
    segment,
    token_hash: 'x',
    unlock_secret: 'x',
    enrolled_at: '2026-01-01T00:00:00.000Z',
    last_seen: i % 11 === 0 ? null : new Date(Date.UTC(2026, 10, 23, 15, 30) + i * 60_000).toISOString(),
    ack_seq: 0,
    last_hash: 'x',
    chain_broken_seq: null,
    policy_version: i % 4,
    enforcement: 'active',
    agent_version: '0.1.0',
    last_user: lastUser,
  });
  for (let n = 0; n < FLEET; n++) {
    const i = (n * 7919) % FLEET;
    const id = crypto.randomUUID();
    const hostname = `pc-${String(Math.floor((i + 50) / 100)).padStart(2, '0')}`;
    const segment = i % 5 < 3 ? 'lgwan' : 'mynumber';
    const row = agentRow(id, hostname, segment, i, `staff${i}`);
    agents.push(row);
    if (i % 7 !== 0) inventory.push({ agent_id: id, hash: 'h', snapshot: JSON.stringify(snapshot(hostname)), received_at: AT.toISOString() });
    let blocked = 0;
    if (i % 4 === 1) {
      const at = (ms: number) => new Date(AT.getTime() - ms).toISOString();
      for (const [seq, type, when] of [
        [1, 'device.blocked', 8 * DAY],
        [2, 'device.blocked', 7 * DAY - 1000],
        [3, 'device.allowed', DAY],
        [4, 'device.blocked', 3600_000],
      ] as const) {
        events.push({ agent_id: id, seq, at: at(when), type, payload: '{}', prev_hash: 'p', hash: 'h', received_at: at(when) });
      }
      blocked = 2;
    }
    expected.set(id, { blocked, lastSeen: row.last_seen, segment });
  }
  HOSTILE.forEach(([input, shown], k) => {
    const id = `hostile-${String(k).padStart(2, '0')}`;
    // PostgreSQL text cannot hold NUL at all, so NUL reaches the ledger only through snapshots.
    const row = agentRow(id, input.replace(/\u0000/g, ''), 'internet', 11 * k + 1, input.replace(/\u0000/g, ''));
    agents.push(row);
    inventory.push({ agent_id: id, hash: 'h', snapshot: JSON.stringify(snapshot(input, input)), received_at: AT.toISOString() });
    expected.set(id, { blocked: 0, lastSeen: row.last_seen, segment: 'internet', hostile: [input, shown] });
  });
  // A snapshot stored before sections had defaults, and one that no longer parses.
  const legacy = {
    collectedAt: '2025-04-01T00:00:00.000Z',
    agentVersion: '0.0.9',
    hostname: 'legacy-pc',
    system: { manufacturer: 'NEC', model: 'Mate MB', serial: 'L1', uuid: '' },
    os: { platform: 'win32', distro: 'Microsoft Windows 10 Pro', release: '10.0.19045', kernel: '10.0.19045', arch: 'x64' },
    cpu: { manufacturer: 'Intel', brand: 'Core i3', cores: 4, physicalCores: 2 },
    memory: { totalBytes: 8 * 1024 ** 3 },
  };
  for (const [id, hostname, json] of [
    ['odd-legacy', 'legacy-pc', JSON.stringify(legacy)],
    ['odd-damaged', 'damaged-pc', '{"hostname": "x", '],
  ] as const) {
    const row = agentRow(id, hostname, 'mynumber', 2, 'staff');
    agents.push(row);
    inventory.push({ agent_id: id, hash: 'h', snapshot: json, received_at: AT.toISOString() });
    expected.set(id, { blocked: 0, lastSeen: row.last_seen, segment: 'mynumber' });
  }
  const chunks = <T>(rows: T[]) => Array.from({ length: Math.ceil(rows.length / 200) }, (_, n) => rows.slice(n * 200, n * 200 + 200));
  for (const part of chunks(agents)) await db.insertInto('agents').values(part).execute();
  for (const part of chunks(inventory)) await db.insertInto('inventory_latest').values(part).execute();
  for (const part of chunks(events)) await db.insertInto('events').values(part).execute();
  return { expected };
}

/** A destination that keeps what it is given. */
function memorySink(): { out: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { out, bytes: () => Buffer.concat(chunks) };
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

async function* inBatches(rows: LedgerRow[], size = LEDGER_PAGE_SIZE): AsyncGenerator<LedgerRow[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

/** The entries of a zip, read with the central directory (the streamed zip's local headers carry no sizes). */
function unzip(zip: Buffer): Map<string, Buffer> {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const files = new Map<string, Buffer>();
  let p = zip.readUInt32LE(end + 16);
  for (let n = zip.readUInt16LE(end + 10); n > 0; n--) {
    const method = zip.readUInt16LE(p + 10);
    const size = zip.readUInt32LE(p + 20);
    const nameLength = zip.readUInt16LE(p + 28);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLength);
    const data = zip.subarray(local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28)).subarray(0, size);
    files.set(name, method === 8 ? zlib.inflateRawSync(data) : Buffer.from(data));
    p += 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return files;
}

async function xlsxOf(
  rows: AsyncIterable<LedgerRow[]>,
  lang: 'ja' | 'en',
): Promise<{ buffer: Buffer; sheet: ExcelJS.Worksheet; workbook: ExcelJS.Workbook; count: number }> {
  const { out, bytes } = memorySink();
  const count = await writeLedgerXlsx(rows, lang, out, AT);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(bytes() as unknown as ArrayBuffer);
  const sheet = workbook.worksheets[0];
  if (!sheet) throw new Error('no sheet');
  return { buffer: bytes(), sheet, workbook, count };
}

describe.each(ENGINES)('ledger export on %s', (engine) => {
  const skip = engine === 'postgres' && !PG_URL;
  // The database alone, migrated as `collector serve` does; the export needs no HTTP server.
  let collector: CollectorDb;
  let cleanup: () => Promise<void>;
  let seeded: Seeded;

  beforeAll(async () => {
    if (skip) return;
    const { url, drop } = await createEngineDatabase(engine, 'mamori-export-');
    cleanup = drop;
    collector = await openCollectorDb(parseDbUrl(url));
    seeded = await seed(collector.db);
  });
  afterAll(async () => {
    if (skip) return;
    await collector.destroy();
    await cleanup();
  });

  /** The engine's own order by host name then id: what every export must follow. */
  async function dbOrder(segment?: 'lgwan'): Promise<string[]> {
    let query = collector.db.selectFrom('agents').select('id').orderBy('hostname').orderBy('id');
    if (segment) query = query.where('segment', '=', segment);
    return (await query.execute()).map((r) => r.id);
  }

  it.skipIf(skip)('yields every terminal exactly once, in host-name order, across page boundaries', async () => {
    const batches = await collect(ledgerRowBatches(collector.db, undefined, AT));
    expect(batches.map((b) => b.length)).toEqual([500, 500, TOTAL - 1000]);
    const ids = batches.flat().map((r) => r.agent_id);
    expect(new Set(ids).size).toBe(TOTAL);
    expect(ids).toEqual(await dbOrder());
    // Equal host names straddle both page breaks: the id alone carries the order across them.
    expect(batches[0]!.at(-1)!.hostname).toBe(batches[1]![0]!.hostname);
    expect(batches[1]!.at(-1)!.hostname).toBe(batches[2]![0]!.hostname);

    for (const row of batches.flat()) {
      const want = seeded.expected.get(String(row.agent_id))!;
      expect(row.blocked_7d).toBe(want.blocked);
      expect(row.last_seen).toBe(want.lastSeen);
      expect(row.segment).toBe(want.segment);
    }
    const withoutInventory = batches.flat().find((r) => r.agent_id !== 'odd-damaged' && r.memory_gb === null);
    expect(withoutInventory?.os).toBe('');
    // An older snapshot still fills its row; a damaged one costs its inventory columns, not the export.
    const byId = new Map(batches.flat().map((r) => [r.agent_id, r]));
    expect(byId.get('odd-legacy')).toMatchObject({ hostname: 'legacy-pc', model: 'Mate MB', memory_gb: 8, usb_devices: '', disks: '' });
    expect(byId.get('odd-damaged')).toMatchObject({ hostname: 'damaged-pc', os: '', model: '', memory_gb: null, last_user: 'staff' });

    expect(await ledgerRows(collector.db, undefined, AT)).toEqual(batches.flat());
  });

  it.skipIf(skip)('reads the columns storeInventory keeps beside a snapshot, the same as from the snapshot itself', async () => {
    // Two terminals with one snapshot: one stored through the ingest path (columns kept), the other
    // as a row from before the columns existed (parsed from the snapshot at export time).
    const snap = snapshot('same-pc', HOSTILE[0]![0]);
    for (const id of ['same-stored', 'same-legacy']) {
      await collector.db
        .insertInto('agents')
        .values({ ...agentFixture(id), hostname: 'same-pc', segment: 'internet' })
        .execute();
    }
    await storeInventory(collector.db, 'same-stored', snap);
    await collector.db
      .insertInto('inventory_latest')
      .values({ agent_id: 'same-legacy', hash: 'h', snapshot: JSON.stringify(snap), received_at: AT.toISOString() })
      .execute();
    const stored = await collector.db.selectFrom('inventory_latest').select('ledger').where('agent_id', '=', 'same-stored').executeTakeFirstOrThrow();
    expect(JSON.parse(stored.ledger!)).toMatchObject({ hostname: 'same-pc', manufacturer: HOSTILE[0]![0], memory_gb: 16 });
    const rows = (await ledgerRows(collector.db, 'internet', AT)).filter((r) => r.hostname === 'same-pc');
    expect(rows).toHaveLength(2);
    const { agent_id: _a, last_seen: _b, ...fromColumns } = rows.find((r) => r.agent_id === 'same-stored')!;
    const { agent_id: _c, last_seen: _d, ...fromSnapshot } = rows.find((r) => r.agent_id === 'same-legacy')!;
    expect(fromColumns).toEqual(fromSnapshot);
    expect(fromColumns.usb_devices).toContain('0781:5581');
    await collector.db.deleteFrom('inventory_latest').where('agent_id', 'in', ['same-stored', 'same-legacy']).execute();
    await collector.db.deleteFrom('agents').where('id', 'in', ['same-stored', 'same-legacy']).execute();
  });

  it.skipIf(skip)('keeps to one segment, across pages too', async () => {
    const rows = (await collect(ledgerRowBatches(collector.db, 'lgwan', AT))).flat();
    expect(rows.length).toBeGreaterThan(LEDGER_PAGE_SIZE);
    expect(rows.every((r) => r.segment === 'lgwan')).toBe(true);
    expect(rows.map((r) => r.agent_id)).toEqual(await dbOrder('lgwan'));
    expect(await collect(ledgerRowBatches(collector.db, 'internet', AT))).toHaveLength(1);
  });

  it.skipIf(skip)('writes an XLSX with a frozen, filtered, bold header, typed cells, and no formula anywhere', async () => {
    const { buffer, sheet, workbook, count } = await xlsxOf(ledgerRowBatches(collector.db, undefined, AT), 'ja');
    expect(count).toBe(TOTAL);
    expect(sheet.name).toBe('端末台帳');
    expect(workbook.creator).toBe('Mamori');
    expect(Math.abs(workbook.created.getTime() - AT.getTime())).toBeLessThan(1000);
    expect((sheet.getRow(1).values as unknown[]).slice(1)).toEqual(headers('ja'));
    expect(sheet.getRow(1).getCell(1).font?.bold).toBe(true);
    expect(sheet.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
    expect(sheet.autoFilter).toBe(`A1:X${count + 1}`);
    expect(sheet.rowCount).toBe(count + 1);
    // Widths follow the contents, and Japanese headers count double (exceljs reads Excel's default
    // width, 9, as unset).
    const widths = sheet.columns.map((c) => c.width ?? 9);
    expect(headers('ja').filter((h, i) => widths[i]! < displayWidth(h) + 2)).toEqual([]);
    expect(widths[col('usb_devices')]).toBeGreaterThan(widths[col('segment')]! + 20);

    const byId = new Map<string, ExcelJS.Row>();
    sheet.eachRow((row, n) => {
      if (n > 1) byId.set(String(row.getCell(1).value), row);
    });
    expect(byId.size).toBe(count);
    for (const [id, want] of seeded.expected) {
      const row = byId.get(id)!;
      const lastSeen = row.getCell(col('last_seen') + 1);
      if (want.lastSeen === null) {
        expect(lastSeen.type).toBe(ExcelJS.ValueType.Null);
      } else {
        // The JST wall clock: 2026-11-23T15:30Z is shown as 2026/11/24 00:30.
        expect(lastSeen.type).toBe(ExcelJS.ValueType.Date);
        expect((lastSeen.value as Date).getTime()).toBe(Date.parse(want.lastSeen) + 9 * 3600_000);
        expect(lastSeen.numFmt).toBe('yyyy/mm/dd hh:mm');
      }
      expect(row.getCell(col('blocked_7d') + 1).value).toBe(want.blocked);
      expect(row.getCell(col('policy_version') + 1).type).toBe(ExcelJS.ValueType.Number);
      if (want.hostile) {
        const [input, csvShown] = want.hostile;
        // Line breaks inside a cell are Excel's LF; the CSV keeps them as they came.
        const shown = csvShown.replace(/\r\n?/g, '\n');
        expect(row.getCell(col('hostname') + 1).value).toBe(shown);
        expect(row.getCell(col('manufacturer') + 1).value).toBe(shown);
        // Stored outside the snapshot's JSON, a lone surrogate comes back from the database as
        // U+FFFD: one (pg's UTF-8 encoder) or three (SQLite keeps better-sqlite3's WTF-8 bytes).
        if (input === SURROGATE) expect(row.getCell(col('last_user') + 1).value).toMatch(/^lone \ufffd+ surrogate$/);
        else expect(row.getCell(col('last_user') + 1).value).toBe(shown);
        expect(String(row.getCell(col('usb_devices') + 1).value)).toContain(shown.replace(/^'/, ''));
        expect(row.getCell(col('memory_gb') + 1).value).toBe(16);
      }
    }

    // Every cell of the sheet, collected rather than asserted one by one (24,000 expects are slow).
    let cells = 0;
    const active: string[] = [];
    const unsafe: string[] = [];
    sheet.eachRow({ includeEmpty: true }, (row) => {
      row.eachCell({ includeEmpty: true }, (cell) => {
        cells++;
        if (
          cell.type === ExcelJS.ValueType.Formula ||
          cell.formula !== undefined ||
          cell.type === ExcelJS.ValueType.Hyperlink ||
          cell.type === ExcelJS.ValueType.RichText
        )
          active.push(cell.address);
        if (typeof cell.value === 'string' && (FORMULA_START.test(cell.value) || XML_FORBIDDEN.test(cell.value))) unsafe.push(`${cell.address}: ${cell.value}`);
      });
    });
    expect(cells).toBeGreaterThan(count * 15);
    expect(active).toEqual([]);
    expect(unsafe).toEqual([]);

    const files = unzip(buffer);
    const xml = files.get('xl/worksheets/sheet1.xml')!;
    expect(isUtf8(xml)).toBe(true);
    const text = xml.toString('utf8');
    expect(text).not.toMatch(/<f[\s>/]/);
    expect(text).not.toContain('<hyperlink');
    expect(text).not.toMatch(XML_FORBIDDEN);
    expect(text).toContain('<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>');
    for (const [name, data] of files) expect(data.toString('utf8'), name).not.toMatch(XML_FORBIDDEN);
  });

  it.skipIf(skip)('writes English headers and the Ledger sheet with lang=en', async () => {
    const { sheet } = await xlsxOf(ledgerRowBatches(collector.db, 'internet', AT), 'en');
    expect(sheet.name).toBe('Ledger');
    expect((sheet.getRow(1).values as unknown[]).slice(1)).toEqual(LEDGER_COLUMNS.map((c) => c.key));
    expect(sheet.rowCount).toBe(HOSTILE.length + 1);
    expect(sheet.autoFilter).toBe(`A1:X${HOSTILE.length + 1}`);
  });

  it.skipIf(skip)('streams CSV identical to ledgerCsv, hostile strings neutralised and cleaned', async () => {
    const rows = await ledgerRows(collector.db, undefined, AT);
    for (const lang of ['ja', 'en'] as const) {
      const { out, bytes } = memorySink();
      expect(await writeLedgerCsv(ledgerRowBatches(collector.db, undefined, AT), lang, out)).toBe(rows.length);
      const streamed = bytes();
      expect(streamed.equals(Buffer.from(ledgerCsv(rows, lang), 'utf8'))).toBe(true);
      expect([...streamed.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const text = streamed.toString('utf8');
      expect(text.endsWith('\r\n')).toBe(true);
      expect(text.replace(/"[^"]*"/g, '')).not.toMatch(/[^\r]\n/);
      expect(text).not.toMatch(XML_FORBIDDEN);

      const parsed = parseCsv(text, { bom: true }) as string[][];
      expect(parsed[0]).toEqual(headers(lang));
      expect(parsed).toHaveLength(rows.length + 1);
      expect(parsed.flat().filter((cell) => FORMULA_START.test(cell))).toEqual([]);
      const byId = new Map(parsed.slice(1).map((r) => [r[0]!, r]));
      for (const [id, want] of seeded.expected) {
        const row = byId.get(id)!;
        expect(row[col('blocked_7d')]).toBe(String(want.blocked));
        if (want.hostile) {
          expect(row[col('hostname')]).toBe(want.hostile[1]);
          expect(row[col('manufacturer')]).toBe(want.hostile[1]);
        }
      }
    }
  });
});

describe('ledger export streaming', () => {
  const row = (i: number, usb = ''): LedgerRow => ({
    agent_id: `a-${i}`,
    hostname: `pc-${i}`,
    segment: 'lgwan',
    os: 'Windows 11',
    os_version: '10.0.22631',
    manufacturer: 'FUJITSU',
    model: 'ESPRIMO',
    serial: `S${i}`,
    cpu: 'Core i5',
    memory_gb: 16,
    disks: 'Samsung 500GB',
    ip_addresses: '10.0.0.1',
    mac_addresses: '00:11:22:33:44:55',
    usb_devices: usb,
    last_user: 'staff',
    last_seen: '2026-11-23T15:30:00.000Z',
    policy_version: 3,
    enforcement: 'active',
    blocked_7d: 0,
    agent_version: '0.1.0',
  });

  /** A download that stalls until released, and a source that counts the batches it has handed out. */
  function stalled(): { out: Writable; release: () => void; bytes: () => Buffer } {
    const chunks: Buffer[] = [];
    let held: (() => void) | undefined;
    let flowing = false;
    const out = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        if (flowing) done();
        else held = done;
      },
    });
    return {
      out,
      release: () => {
        flowing = true;
        held?.();
      },
      bytes: () => Buffer.concat(chunks),
    };
  }

  function counted(total: number, size: number, usb: string): { batches: AsyncIterable<LedgerRow[]>; pulled: () => number; closed: () => boolean } {
    let pulled = 0;
    let closed = false;
    async function* gen() {
      try {
        for (let b = 0; b < total; b++) {
          pulled++;
          yield Array.from({ length: size }, (_, i) => row(b * size + i, usb));
        }
      } finally {
        closed = true;
      }
    }
    return { batches: gen(), pulled: () => pulled, closed: () => closed };
  }

  /** Waits until the source has handed out nothing more for 100 ms: the export is waiting, or done. */
  async function quiet(pulled: () => number): Promise<void> {
    for (let last = -1; pulled() !== last;) {
      last = pulled();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('stops reading the database while a CSV download stalls, and finishes when it resumes', async () => {
    const { out, release, bytes } = stalled();
    const source = counted(40, 100, 'x'.repeat(500));
    const done = writeLedgerCsv(source.batches, 'ja', out);
    await quiet(source.pulled);
    expect(source.pulled()).toBeLessThanOrEqual(2);
    release();
    expect(await done).toBe(4000);
    expect(parseCsv(bytes().toString('utf8'), { bom: true })).toHaveLength(4001);
  });

  it('stops reading the database while an XLSX download stalls, and finishes when it resumes', async () => {
    const { out, release, bytes } = stalled();
    // About 0.6 MB of sheet XML per batch, 10 MB in all, against a 4 MB allowance.
    const source = counted(16, 100, 'USB '.repeat(1500));
    const done = writeLedgerXlsx(source.batches, 'en', out);
    await quiet(source.pulled);
    expect(source.pulled()).toBeLessThanOrEqual(10);
    release();
    expect(await done).toBe(1600);
    const xml = unzip(bytes()).get('xl/worksheets/sheet1.xml')!.toString('utf8');
    expect(xml.match(/<row /g)).toHaveLength(1601);
  });

  it('gives up, and stops reading, when the client hangs up mid-download', async () => {
    for (const write of [writeLedgerCsv, writeLedgerXlsx]) {
      const { out } = stalled();
      const source = counted(40, 200, 'USB '.repeat(300));
      const done = write(source.batches, 'ja', out);
      await quiet(source.pulled);
      out.destroy();
      await expect(done).rejects.toMatchObject({ code: 'unavailable' });
      expect(source.closed()).toBe(true);
      expect(source.pulled()).toBeLessThan(40);
    }
  });

  it('destroys the download when the database fails midway, so a cut-off file is not taken for the whole', async () => {
    for (const write of [writeLedgerCsv, writeLedgerXlsx]) {
      const { out } = memorySink();
      async function* failing() {
        yield [row(1)];
        throw new Error('database went away');
      }
      await expect(write(failing(), 'ja', out)).rejects.toThrow('database went away');
      expect(out.destroyed).toBe(true);
      expect(out.writableFinished).toBe(false);
    }
  });

  it('leaves the destination untouched when the first page already fails', async () => {
    for (const write of [writeLedgerCsv, writeLedgerXlsx]) {
      const { out, bytes } = memorySink();
      async function* failing(): AsyncGenerator<LedgerRow[]> {
        throw new Error('no database');
      }
      await expect(write(failing(), 'ja', out)).rejects.toThrow('no database');
      expect(out.destroyed).toBe(false);
      expect(bytes()).toHaveLength(0);
    }
  });

  it('writes a header-only ledger when there are no terminals', async () => {
    const { sheet, count } = await xlsxOf(inBatches([]), 'ja');
    expect(count).toBe(0);
    expect(sheet.rowCount).toBe(1);
    const { out, bytes } = memorySink();
    await writeLedgerCsv(inBatches([]), 'en', out);
    expect(bytes().toString('utf8')).toBe(ledgerCsv([], 'en'));
  });

  it('cuts text longer than an Excel cell holds in the XLSX, never inside a character, and keeps it whole in the CSV', async () => {
    // A terminal reporting a thousand USB devices: 40,001 UTF-16 units, emoji pairs after an 'a'
    // so that the cut falls between the two halves of one.
    const long = `a${'😀'.repeat(20_000)}`;
    const { sheet } = await xlsxOf(inBatches([row(1, long)]), 'en');
    const shown = String(sheet.getRow(2).getCell(col('usb_devices') + 1).value);
    expect(shown.length).toBeLessThanOrEqual(XLSX_CELL_MAX);
    expect(shown.length).toBeGreaterThan(XLSX_CELL_MAX - 3);
    expect(shown.endsWith('😀…')).toBe(true);
    expect(shown).not.toMatch(XML_FORBIDDEN);
    const { out, bytes } = memorySink();
    await writeLedgerCsv(inBatches([row(1, long)]), 'en', out);
    expect((parseCsv(bytes().toString('utf8'), { bom: true }) as string[][])[1]![col('usb_devices')]).toBe(long);
  });

  it('counts full-width characters double when sizing columns', () => {
    expect(displayWidth('abc')).toBe(3);
    expect(displayWidth('端末台帳')).toBe(8);
    expect(displayWidth('ｱｲｳ')).toBe(3);
    expect(displayWidth('改行\r\nあり, "引用"')).toBe(12);
  });
});
