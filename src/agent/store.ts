import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  GENESIS_HASH,
  eventHash,
  systemClock,
  parseEventPayload,
  verifyChain,
  type ChainBreak,
  type ChainedEvent,
  type Clock,
  type EventType,
  type NewEvent,
  type StoredEvent,
} from '../shared';
import { STATE_KEYS, type StateKey } from './state-keys';
import { APPLICATION_ID } from './store-id';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** Why a store could not be opened or written. The message always names the file. */
export class StoreError extends Error {
  constructor(
    readonly code: 'store_corrupt' | 'store_foreign' | 'store_newer' | 'store_io',
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/**
 * Numbered migrations; `PRAGMA user_version` is the number applied. Append only: a released
 * migration is never edited.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     seq INTEGER PRIMARY KEY,
     at TEXT NOT NULL,
     type TEXT NOT NULL,
     payload TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   ) STRICT;
   CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;`,
];

/** Acknowledged events older than this many days are pruned after each sync (docs/design.md#retention). */
export const AGENT_RETENTION_DAYS = 90;

/** The agent's local, append-only, hash-chained event log plus its small key-value state. */
export interface EventStore {
  /** The SQLite file. */
  readonly file: string;
  /**
   * Validates, chains and commits one event, dated `at` (the store's clock by default); when it
   * returns the event is durable.
   * @throws EventSchemaError for an unknown type or invalid payload (nothing is stored).
   */
  append(event: NewEvent, at?: Date): StoredEvent;
  /** Events with seq above `seq`, ascending, at most `limit`. */
  readSince(seq: number, limit?: number): StoredEvent[];
  /** The newest events first. */
  recent(limit: number, types?: readonly EventType[]): StoredEvent[];
  /** The seq and hash of the last event (0 and the genesis hash when empty). */
  head(): { seq: number; hash: string };
  /** The highest seq the collector has acknowledged. */
  ackSeq(): number;
  /** Records an acknowledgement; it never moves backwards nor past the last event. */
  setAckSeq(seq: number): void;
  /** Events not yet acknowledged (the outbox). */
  pendingCount(): number;
  /** Checks the whole chain (from the local checkpoint once events were pruned); null when intact, else the first bad seq. */
  verify(): ChainBreak | null;
  /**
   * Removes acknowledged events dated before `before`, oldest first, in batches of `batch`; each
   * batch is verified and deleted in one transaction with the checkpoint moved to its last event.
   * The acknowledged event itself stays (the next sync chains on from it), and a batch that does
   * not verify is kept, so the break stays visible.
   * @returns how many events were removed.
   */
  pruneAcknowledged(before: Date, batch?: number): number;
  getState(key: StateKey): string | null;
  setState(key: StateKey, value: string): void;
  deleteState(key: StateKey): void;
  /** Runs `fn` in one transaction: its appends and state changes are kept together or not at all. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

interface EventRow {
  seq: number;
  at: string;
  type: string;
  payload: string;
  prev_hash: string;
  hash: string;
}

function rowToEvent(row: EventRow): StoredEvent {
  let payload: unknown;
  try {
    payload = JSON.parse(row.payload);
  } catch {
    // A row edited into invalid JSON: keep the text so verification names this seq.
    payload = row.payload;
  }
  return {
    seq: row.seq,
    at: row.at,
    type: row.type as EventType,
    payload,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function checkHeader(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StoreError('store_io', `cannot open event store ${file}: ${(err as Error).message}`);
  }
  try {
    const header = Buffer.alloc(SQLITE_MAGIC.length);
    const n = fs.readSync(fd, header, 0, header.length, 0);
    if (n === 0) return; // an empty file is a new database
    if (n < header.length || !header.equals(SQLITE_MAGIC)) {
      throw new StoreError('store_foreign', `${file} is not a SQLite database; it was left untouched`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Opens (or creates) the event store at `file`.
 * @throws StoreError naming the file when it is corrupt, not SQLite, another application's
 *   database, or from a newer Mamori. Such a file is never modified.
 */
export function openEventStore(
  file: string,
  opts: { readonly?: boolean; /** Dates appended events; the wall clock by default. */ clock?: Clock } = {},
): EventStore {
  checkHeader(file);
  if (!opts.readonly) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: !!opts.readonly, fileMustExist: !!opts.readonly });
  } catch (err) {
    throw new StoreError('store_io', `cannot open event store ${file}: ${(err as Error).message}`);
  }
  try {
    prepareSchema(db, file, !!opts.readonly);
  } catch (err) {
    db.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError('store_corrupt', `event store ${file} is damaged: ${(err as Error).message}`);
  }
  return createEventStore(db, file, opts.clock ?? systemClock);
}

function prepareSchema(db: Database.Database, file: string, readonly: boolean): void {
  // Reading the schema first makes SQLite check the file before we write anything to it.
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== APPLICATION_ID && (tables.length > 0 || appId !== 0)) {
    throw new StoreError('store_foreign', `${file} is another application's database; it was left untouched`);
  }
  if (version > MIGRATIONS.length) {
    throw new StoreError('store_newer', `${file} was written by a newer Mamori (schema ${version}); upgrade the agent`);
  }
  if (readonly) {
    if (version < MIGRATIONS.length) {
      throw new StoreError('store_io', `${file} needs migrating; run the agent once to migrate it`);
    }
    return;
  }
  db.pragma('journal_mode = WAL');
  // FULL: an append that returned survives a power cut, not only a killed process.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  const migrate = db.transaction(() => {
    for (let i = version; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
    db.pragma(`application_id = ${APPLICATION_ID}`);
  });
  if (version < MIGRATIONS.length) migrate.immediate();
}

/**
 * Retention of the local log (docs/design.md#retention): where the stored chain starts, and one
 * batch of acknowledged events older than a time removed with the checkpoint moved, in one
 * transaction.
 */
function createPruner(db: Database.Database, ackSeq: () => number) {
  const getState = db.prepare('SELECT value FROM state WHERE key = ?').pluck();
  const setState = db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  const oldest = db.prepare('SELECT * FROM events WHERE seq < ? ORDER BY seq LIMIT ?');
  const deleteUpTo = db.prepare('DELETE FROM events WHERE seq <= ?');
  /** Where the stored chain starts: after the last pruned event, else at the beginning. */
  const chainStart = (): { seq: number; hash: string } => {
    const text = getState.get(STATE_KEYS.chainCheckpoint) as string | undefined;
    if (!text) return { seq: 0, hash: GENESIS_HASH };
    const cp = JSON.parse(text) as { seq: number; hash: string };
    return { seq: cp.seq, hash: cp.hash };
  };
  const pruneBatch = db.transaction((beforeIso: string, batch: number): number => {
    const events: StoredEvent[] = [];
    for (const row of oldest.all(ackSeq(), batch) as EventRow[]) {
      if (row.at >= beforeIso) break;
      events.push(rowToEvent(row));
    }
    if (events.length === 0) return 0;
    if (verifyChain(events, chainStart())) return 0;
    const last = events[events.length - 1]!;
    deleteUpTo.run(last.seq);
    setState.run(STATE_KEYS.chainCheckpoint, JSON.stringify({ seq: last.seq, hash: last.hash, at: last.at }));
    return events.length;
  });
  return { chainStart, pruneBatch };
}

function createEventStore(db: Database.Database, file: string, clock: Clock): EventStore {
  const lastRow = db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1');
  const insert = db.prepare('INSERT INTO events (seq, at, type, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)');
  const since = db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?');
  const newest = db.prepare('SELECT * FROM events ORDER BY seq DESC LIMIT ?');
  const all = db.prepare('SELECT * FROM events ORDER BY seq');
  const getState = db.prepare('SELECT value FROM state WHERE key = ?').pluck();
  const setState = db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  const deleteState = db.prepare('DELETE FROM state WHERE key = ?');

  const head = (): { seq: number; hash: string } => {
    const row = lastRow.get() as { seq: number; hash: string } | undefined;
    return row ?? chainStart();
  };
  const ackSeq = (): number => Number(getState.get(STATE_KEYS.ackSeq) ?? 0);
  const { chainStart, pruneBatch } = createPruner(db, ackSeq);

  const appendTx = db.transaction((type: string, payloadJson: string, payload: unknown, at: string) => {
    const prev = head();
    const seq = prev.seq + 1;
    const hash = eventHash(prev.hash, { seq, at, type, payload });
    insert.run(seq, at, type, payloadJson, prev.hash, hash);
    return { seq, at, type: type as EventType, payload, prevHash: prev.hash, hash };
  });

  return {
    file,
    append(event, at = clock.now()) {
      const payload = parseEventPayload(event.type, event.payload);
      // Store exactly the JSON that was hashed, so verification recomputes the same bytes.
      const payloadJson = JSON.stringify(payload);
      return appendTx.immediate(event.type, payloadJson, JSON.parse(payloadJson), at.toISOString());
    },
    readSince(seq, limit = 1000) {
      return (since.all(seq, limit) as EventRow[]).map(rowToEvent);
    },
    recent(limit, types) {
      if (!types?.length) return (newest.all(limit) as EventRow[]).map(rowToEvent);
      const marks = types.map(() => '?').join(',');
      return (db.prepare(`SELECT * FROM events WHERE type IN (${marks}) ORDER BY seq DESC LIMIT ?`).all(...types, limit) as EventRow[]).map(rowToEvent);
    },
    head,
    ackSeq,
    setAckSeq(seq) {
      db.transaction(() => {
        const next = Math.min(Math.max(ackSeq(), seq), head().seq);
        setState.run(STATE_KEYS.ackSeq, String(next));
      }).immediate();
    },
    pendingCount() {
      return Math.max(0, head().seq - ackSeq());
    },
    verify() {
      function* rows(): Generator<ChainedEvent> {
        for (const row of all.iterate() as Iterable<EventRow>) yield rowToEvent(row);
      }
      return verifyChain(rows(), chainStart());
    },
    pruneAcknowledged(before, batch = 1000) {
      let total = 0;
      for (;;) {
        const n = pruneBatch.immediate(before.toISOString(), batch);
        total += n;
        if (n === 0) return total;
      }
    },
    getState(key) {
      return (getState.get(key) as string | undefined) ?? null;
    },
    setState(key, value) {
      setState.run(key, value);
    },
    deleteState(key) {
      deleteState.run(key);
    },
    transaction(fn) {
      return db.transaction(fn).immediate();
    },
    close() {
      if (db.open) db.close();
    },
  };
}
