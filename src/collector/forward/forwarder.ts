import crypto from 'node:crypto';
import os from 'node:os';
import { MAMORI_VERSION } from '../../shared';
import type { CollectorContext } from '../context';
import { formatCef, formatRfc5424, frame, type ForwardRecord } from './format';
import { auditRecord, eventRecord } from './records';
import {
  acquireLease,
  advanceCursors,
  auditAfter,
  eventsAfter,
  getDestination,
  listDestinations,
  recordError,
  recordIdle,
  releaseLease,
  stampPending,
  type Destination,
} from './store';
import { connect, describeError, type SiemConnection } from './transport';

/** How the forwarder paces itself; the defaults suit a collector, tests and the bench shorten some. */
export interface ForwardingOptions {
  /** How often destinations are looked at and pending rows ordered. */
  pollMs: number;
  /** Events (and as many audit entries) per write. */
  batchSize: number;
  /**
   * How long written bytes must stay on an open connection before the cursor moves past them.
   * TCP cannot say what the SIEM read: bytes written just before a connection breaks are sent
   * again on the next (the at-least-once window, docs/design.md#forwarding-to-a-siem).
   */
  settleMs: number;
  /** Batches written and not yet settled, at most: this bounds both memory and repeats after a break. */
  maxUnsettled: number;
  /** How long one collector holds a destination without renewing. */
  leaseMs: number;
  connectTimeoutMs: number;
  /** A SIEM that reads nothing for this long is dropped and retried with backoff. */
  writeTimeoutMs: number;
  maxBackoffMs: number;
  /** This collector's name in the lease (default: host, pid and a random part). */
  owner: string;
  /** The host name audit entries are sent from (default: this machine's). */
  collectorHost: string;
}

export const DEFAULT_FORWARDING: Omit<ForwardingOptions, 'owner' | 'collectorHost'> = {
  pollMs: 250,
  batchSize: 500,
  settleMs: 1000,
  maxUnsettled: 20,
  leaseMs: 30_000,
  connectTimeoutMs: 5000,
  writeTimeoutMs: 5000,
  maxBackoffMs: 30_000,
};

/** The wait before reconnect attempt `failures` (1, 2, …): doubling from 1 s, jittered, capped. */
export function retryDelayMs(failures: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, 1000 * 2 ** Math.min(Math.max(failures - 1, 0), 16));
  return Math.max(250, Math.round(ceiling / 2 + (random() * ceiling) / 2));
}

export interface Forwarding {
  /** Stops every destination's loop and gives back the leases. */
  stop(): Promise<void>;
}

/** Waits that `stop()` cuts short. */
class Sleeper {
  private wakers = new Set<() => void>();
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }
  wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }
}

/** Renders a batch of records in the destination's format, each framed by octet counting (RFC 6587). */
export function renderBatch(records: ForwardRecord[], format: Destination['format']): Buffer {
  return Buffer.concat(records.map((r) => frame(format === 'cef' ? formatCef(r, MAMORI_VERSION) : formatRfc5424(r))));
}

interface Position {
  event: number;
  audit: number;
}

/** One destination's loop: lease, connect, send from the cursor, settle, advance. */
class DestinationWorker {
  private stopped = false;
  private conn: SiemConnection | undefined;
  private failures = 0;
  private committed: Position = { event: 0, audit: 0 };
  private sent: Position = { event: 0, audit: 0 };
  private unsettled: (Position & { at: number })[] = [];
  private lastIdleMark = 0;
  private leaseRenewedAt: number | undefined;
  private dest: Destination | undefined;
  private readonly sleeper = new Sleeper();
  readonly done: Promise<void>;

  constructor(
    private readonly ctx: CollectorContext,
    private readonly name: string,
    private readonly opts: ForwardingOptions,
  ) {
    this.done = this.run();
  }

  stop(): void {
    this.stopped = true;
    this.conn?.close();
    this.sleeper.wakeAll();
  }

  private now(): Date {
    return this.ctx.clock.now();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const wait = await this.step();
        if (wait > 0 && !this.stopped) await this.sleeper.sleep(wait);
      } catch {
        // A database error (PostgreSQL restarting): try again later; nothing moved.
        this.dropConnection();
        if (!this.stopped) await this.sleeper.sleep(retryDelayMs(++this.failures, this.opts.maxBackoffMs));
      }
    }
    this.conn?.close();
    await releaseLease(this.ctx.db, this.name, this.opts.owner).catch(() => undefined);
  }

  private dropConnection(): void {
    this.conn?.close();
    this.conn = undefined;
    this.dest = undefined;
    this.leaseRenewedAt = undefined;
    this.unsettled = [];
    this.sent = { ...this.committed };
  }

  private async fail(err: unknown): Promise<number> {
    this.dropConnection();
    this.failures++;
    await recordError(this.ctx.db, this.name, this.opts.owner, describeError(err), this.now());
    return retryDelayMs(this.failures, this.opts.maxBackoffMs);
  }

  /** One pass; returns how long to wait before the next. */
  private async step(): Promise<number> {
    const { db } = this.ctx;
    if (!(await this.holdLease())) {
      // Another collector forwards this destination (or it was disabled): start over when ours again.
      this.dropConnection();
      return this.opts.pollMs * 4;
    }
    if (this.conn && !this.conn.open) return this.fail(this.conn.failure ?? new Error('the connection closed'));
    if (!this.conn || !this.dest) {
      // The cursors in the database are the truth: another collector may have moved them.
      const dest = await getDestination(db, this.name);
      this.dest = dest;
      this.committed = { event: dest.eventCursor, audit: dest.auditCursor };
      this.sent = { ...this.committed };
      try {
        this.conn = await connect(dest, this.opts);
      } catch (err) {
        return this.fail(err);
      }
      if (this.stopped) return 0;
    }
    if (!(await this.settle())) return 0;
    if (this.unsettled.length >= this.opts.maxUnsettled) return Math.min(this.opts.pollMs, this.opts.settleMs);
    const records = await this.nextRecords(this.dest);
    if (records.list.length === 0) {
      if (this.unsettled.length === 0 && Date.now() - this.lastIdleMark > 5000) {
        this.lastIdleMark = Date.now();
        await recordIdle(db, this.name, this.opts.owner, this.now());
      }
      return this.opts.pollMs;
    }
    try {
      await this.conn.write(renderBatch(records.list, this.dest.format));
    } catch (err) {
      return this.fail(err);
    }
    this.failures = 0;
    this.sent = records.next;
    this.unsettled.push({ ...records.next, at: this.now().getTime() });
    // A short batch means we caught up with ingest: let more gather rather than chase it row by row.
    return records.full ? 0 : this.opts.pollMs;
  }

  /** Renews the lease when a third of it has run; the cursor update checks it on every advance. */
  private async holdLease(): Promise<boolean> {
    const now = this.now();
    if (this.leaseRenewedAt !== undefined && now.getTime() - this.leaseRenewedAt < this.opts.leaseMs / 3) return true;
    const held = await acquireLease(this.ctx.db, this.name, this.opts.owner, now, this.opts.leaseMs);
    this.leaseRenewedAt = held ? now.getTime() : undefined;
    return held;
  }

  /** Commits every batch that stayed on an open connection for `settleMs`; false when the lease was lost. */
  private async settle(): Promise<boolean> {
    const cutoff = this.now().getTime() - this.opts.settleMs;
    let last: Position | undefined;
    while (this.unsettled.length > 0 && this.unsettled[0]!.at <= cutoff) last = this.unsettled.shift();
    if (!last || !this.conn?.open) return true;
    if (!(await advanceCursors(this.ctx.db, this.name, this.opts.owner, last, this.now()))) {
      this.dropConnection();
      return false;
    }
    this.committed = { event: last.event, audit: last.audit };
    return true;
  }

  private async nextRecords(dest: Destination): Promise<{ list: ForwardRecord[]; next: Position; full: boolean }> {
    const { db } = this.ctx;
    const events = dest.sendEvents ? await eventsAfter(db, this.sent.event, this.opts.batchSize) : [];
    const audits = dest.sendAudit ? await auditAfter(db, this.sent.audit, this.opts.batchSize) : [];
    return {
      list: [...events.map(eventRecord), ...audits.map((a) => auditRecord(a, this.opts.collectorHost))],
      full: events.length === this.opts.batchSize || audits.length === this.opts.batchSize,
      next: {
        event: events.at(-1)?.forward_order ?? this.sent.event,
        audit: audits.at(-1)?.forward_order ?? this.sent.audit,
      },
    };
  }
}

/**
 * Starts forwarding to every enabled destination (docs/design.md#forwarding-to-a-siem): orders
 * new rows, keeps one loop per destination this collector holds the lease of. Nothing here
 * touches ingest: a slow or dead SIEM only delays its own cursor.
 */
export function startForwarding(ctx: CollectorContext, options: Partial<ForwardingOptions> = {}): Forwarding {
  const opts: ForwardingOptions = {
    ...DEFAULT_FORWARDING,
    owner: `${os.hostname()}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`,
    collectorHost: os.hostname(),
    ...options,
  };
  const workers = new Map<string, DestinationWorker>();
  let stopped = false;
  const sleeper = new Sleeper();

  async function tick(): Promise<number> {
    const enabled = (await listDestinations(ctx.db)).filter((d) => d.enabled).map((d) => d.name);
    for (const [name, worker] of workers) {
      if (!enabled.includes(name)) {
        worker.stop();
        workers.delete(name);
      }
    }
    if (enabled.length === 0) return opts.pollMs * 4;
    for (const name of enabled) if (!workers.has(name)) workers.set(name, new DestinationWorker(ctx, name, opts));
    // A full stamping pass means more wait: go again at once.
    return (await stampPending(ctx.db)) > 0 ? 0 : opts.pollMs;
  }

  const loop = (async () => {
    while (!stopped) {
      const wait = await tick().catch(() => opts.pollMs * 4);
      if (!stopped && wait > 0) await sleeper.sleep(wait);
    }
  })();

  return {
    async stop() {
      stopped = true;
      sleeper.wakeAll();
      await loop;
      for (const worker of workers.values()) worker.stop();
      await Promise.all([...workers.values()].map((w) => w.done));
      workers.clear();
    },
  };
}
