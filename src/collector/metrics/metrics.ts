import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HTTP_ROUTES, SEGMENTS } from '../../shared';
import { outboxState } from '../agents';
import { segmentFacts, TERMINAL_STATES } from '../console/queries';
import type { CollectorContext } from '../context';
import { fastifyUrl } from '../routes/api/route';

// `GET /metrics` (docs/design.md#metrics): one prom-client registry per collector instance (never
// the library's global one: a test process holds many collectors). Counters and the latency
// histogram count what this process ingested since it started; the gauges are read from the
// database at each scrape, so every collector on one PostgreSQL reports the same fleet.

/** Seconds; a batch of 500 events on SQLite takes tens of milliseconds. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface CollectorMetrics {
  registry: Registry;
  /** Reads the fleet gauges from the database, then renders every metric in the text format. */
  scrape(): Promise<string>;
}

type Registers = Registry[];

function createMetrics(ctx: CollectorContext): CollectorMetrics & { ingest(outcome: 'stored' | 'refused', events: number, seconds: number): void } {
  const registry = new Registry();
  const registers = [registry];
  const batches = new Counter({
    name: 'mamori_ingest_batches_total',
    help: 'Event batches received from terminals, by outcome (stored or refused)',
    labelNames: ['outcome'],
    registers,
  });
  const events = new Counter({ name: 'mamori_ingest_events_total', help: 'Events in the batches stored (a re-sent event counts again)', registers });
  const latency = new Histogram({
    name: 'mamori_ingest_duration_seconds',
    help: 'Time to answer an event batch',
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const readers = [fleetGauges(ctx, registers), forwardingGauges(ctx, registers), alertGauges(ctx, registers)];
  return {
    registry,
    async scrape() {
      for (const read of readers) await read();
      return registry.metrics();
    },
    ingest(outcome, count, seconds) {
      batches.inc({ outcome });
      if (outcome === 'stored') events.inc(count);
      latency.observe({ outcome }, seconds);
    },
  };
}

/** Terminals by segment and state, and their outboxes, read from the database at each scrape. */
function fleetGauges(ctx: CollectorContext, registers: Registers): () => Promise<void> {
  const terminals = new Gauge({
    name: 'mamori_terminals',
    help: 'Terminals by segment and state (online, offline, never, degraded, chain_broken)',
    labelNames: ['segment', 'state'],
    registers,
  });
  const pending = new Gauge({
    name: 'mamori_agent_outbox_pending_events',
    help: 'Events the terminals reported as not yet acknowledged, by segment',
    labelNames: ['segment'],
    registers,
  });
  const stalled = new Gauge({
    name: 'mamori_agent_outbox_stalled_terminals',
    help: 'Terminals whose outbox has not moved for 30 minutes while they kept calling, by segment',
    labelNames: ['segment'],
    registers,
  });
  return async () => {
    const now = ctx.clock.now();
    const facts = await segmentFacts(ctx.db, now);
    const agents = await ctx.db
      .selectFrom('agents')
      .select(['segment', 'last_seen', 'enforcement', 'chain_broken_seq', 'head_seq', 'ack_seq', 'progress_at'])
      .execute();
    terminals.reset();
    pending.reset();
    stalled.reset();
    for (const segment of SEGMENTS) {
      for (const state of TERMINAL_STATES) terminals.set({ segment, state }, 0);
      pending.set({ segment }, 0);
      stalled.set({ segment }, 0);
    }
    for (const a of agents) {
      const since = facts[a.segment as keyof typeof facts]?.onlineSince;
      const state =
        a.chain_broken_seq !== null
          ? 'chain_broken'
          : a.last_seen === null
            ? 'never'
            : a.enforcement === 'degraded'
              ? 'degraded'
              : since && a.last_seen >= since
                ? 'online'
                : 'offline';
      terminals.inc({ segment: a.segment, state });
      const outbox = outboxState(a);
      pending.inc({ segment: a.segment }, outbox.pendingEvents ?? 0);
      if (outbox.stalled) stalled.inc({ segment: a.segment });
    }
  };
}

/** Per SIEM destination: what is stored but not yet sent, whether it fails, when it last worked. */
function forwardingGauges(ctx: CollectorContext, registers: Registers): () => Promise<void> {
  const forwardLag = new Gauge({
    name: 'mamori_forward_lag',
    help: 'Records stored and ordered but not yet sent, per destination and kind (events, audit)',
    labelNames: ['destination', 'kind'],
    registers,
  });
  const forwardFailing = new Gauge({
    name: 'mamori_forward_failing',
    help: '1 while the last attempt to a destination failed, else 0',
    labelNames: ['destination'],
    registers,
  });
  const forwardSuccess = new Gauge({
    name: 'mamori_forward_last_success_timestamp_seconds',
    help: 'When a destination last took a batch (0: never)',
    labelNames: ['destination'],
    registers,
  });
  return async () => {
    const heads = await ctx.db.selectFrom('forward_counters').select(['name', 'value']).execute();
    const head = Object.fromEntries(heads.map((h) => [h.name, Number(h.value)]));
    const destinations = await ctx.db
      .selectFrom('forward_destinations')
      .select(['name', 'enabled', 'send_events', 'send_audit', 'event_cursor', 'audit_cursor', 'last_error', 'last_success_at'])
      .execute();
    forwardLag.reset();
    forwardFailing.reset();
    forwardSuccess.reset();
    for (const d of destinations) {
      if (d.send_events) forwardLag.set({ destination: d.name, kind: 'events' }, Math.max(0, (head.events ?? 0) - Number(d.event_cursor)));
      if (d.send_audit) forwardLag.set({ destination: d.name, kind: 'audit' }, Math.max(0, (head.audit ?? 0) - Number(d.audit_cursor)));
      forwardFailing.set({ destination: d.name }, d.enabled && d.last_error ? 1 : 0);
      forwardSuccess.set({ destination: d.name }, d.last_success_at ? Date.parse(d.last_success_at) / 1000 : 0);
    }
  };
}

/** Alert mails in the outbox by state, and the pending ones whose last attempt failed. */
function alertGauges(ctx: CollectorContext, registers: Registers): () => Promise<void> {
  const mails = new Gauge({
    name: 'mamori_alert_mails',
    help: 'Alert mails in the outbox by state (pending, sent, suppressed)',
    labelNames: ['state'],
    registers,
  });
  const failingMails = new Gauge({ name: 'mamori_alert_mails_failing', help: 'Pending alert mails whose last attempt failed', registers });
  return async () => {
    const rows = await ctx.db
      .selectFrom('alert_outbox')
      .select((eb) => [
        'state',
        eb.fn.countAll<number | string>().as('n'),
        sql<number | string | null>`SUM(CASE WHEN last_error IS NULL THEN 0 ELSE 1 END)`.as('failing'),
      ])
      .groupBy('state')
      .execute();
    mails.reset();
    let failing = 0;
    for (const r of rows) {
      mails.set({ state: r.state }, Number(r.n));
      if (r.state === 'pending') failing += Number(r.failing ?? 0);
    }
    failingMails.set(failing);
  };
}

const byContext = new WeakMap<CollectorContext, ReturnType<typeof createMetrics>>();

/** The metrics of one collector, made at first use. */
export function metricsFor(ctx: CollectorContext): CollectorMetrics {
  return instance(ctx);
}

function instance(ctx: CollectorContext): ReturnType<typeof createMetrics> {
  let m = byContext.get(ctx);
  if (!m) byContext.set(ctx, (m = createMetrics(ctx)));
  return m;
}

const EVENTS_URL = fastifyUrl(HTTP_ROUTES.postEvents.path);

/**
 * Counts every answered event batch (`POST /api/v1/agents/{agentId}/events`) with its latency.
 * Added on the root before the routes, so the hook covers the API's scope.
 */
export function addIngestMetrics(app: FastifyInstance, ctx: CollectorContext): void {
  const m = instance(ctx);
  app.addHook('onResponse', async (request, reply) => {
    if (request.method !== 'POST' || request.routeOptions.url !== EVENTS_URL) return;
    const body = request.body as { events?: unknown } | undefined;
    const count = Array.isArray(body?.events) ? body.events.length : 0;
    m.ingest(reply.statusCode === 200 ? 'stored' : 'refused', count, reply.elapsedTime / 1000);
  });
}
