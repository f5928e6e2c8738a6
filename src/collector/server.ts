import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import pino from 'pino';
import { CanonicalJsonError, HTTP_STATUS, MamoriError, UsageError, systemClock, type Clock, type ErrorCode } from '../shared';
import { startAlerts } from './alerts/service';
import { alertSecretFileFor } from './alerts/secret';
import type { CollectorContext } from './context';
import { KEY_FILE_NAME, loadSigningKey } from './crypto';
import { openCollectorDb, parseDbUrl, type DbUrl } from './db/connect';
import { startForwarding } from './forward/forwarder';
import { addIngestMetrics } from './metrics/metrics';
import { startRetentionJob } from './retention/job';
import { ensureDefaultPolicies } from './policies';
import { registerConsole } from './console/routes';
import { cookies } from './plugins/cookies';
import { forms } from './plugins/forms';
import { nulCheck } from './plugins/nul-check';
import { securityHeaders } from './plugins/security-headers';
import { staticFiles } from './plugins/static';
import { DEFAULT_RATE_LIMITS, registerRateLimits, type RateLimits } from './rate-limits';
import { registerApi } from './routes/api';

/** Largest request body: a full batch of events with room to spare. */
export const BODY_LIMIT = 4 * 1024 * 1024;

export interface CollectorOptions {
  /** `sqlite:PATH` or `postgres://…`. */
  db: string;
  logger?: pino.Logger | false;
  /** The collector's clock (default: the wall clock). */
  clock?: Clock;
  /** Rate limits replacing the defaults (`DEFAULT_RATE_LIMITS`), one by one. */
  rateLimits?: Partial<RateLimits>;
  /** The policy-signing key file (default: `keyFileFor`). */
  keyFile?: string;
}

/**
 * Where the policy-signing key lives: `policy-signing.key` beside a SQLite database, in the default
 * data directory for PostgreSQL; `--key-file` overrides both.
 */
export function keyFileFor(db: DbUrl, keyFile?: string): string {
  if (keyFile) return path.resolve(keyFile);
  return path.join(db.engine === 'sqlite' ? path.dirname(db.file) : defaultCollectorDataDir(), KEY_FILE_NAME);
}

export interface Collector {
  ctx: CollectorContext;
  app: FastifyInstance;
  /** Starts listening; resolves to the URL it listens on. */
  listen(opts: { host: string; port: number }): Promise<string>;
  stop(): Promise<void>;
}

/** The logger of `collector serve`: JSON on stderr, credentials redacted. */
export function createCollectorLogger(level = process.env.MAMORI_LOG_LEVEL ?? 'info'): pino.Logger {
  return pino(
    {
      name: 'mamori-collector',
      level,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.password', '*.agentToken'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

function errorCodeFor(status: number): ErrorCode {
  if (status === 413) return 'payload_too_large';
  if (status === 404) return 'not_found';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 429) return 'rate_limited';
  return 'bad_request';
}

/**
 * Builds the collector: opens and migrates the database, makes the signing key and default
 * policies on first start, and wires the HTTP routes.
 */
export async function createCollector(opts: CollectorOptions & { https?: { cert: Buffer; key: Buffer } }): Promise<Collector> {
  const url = parseDbUrl(opts.db);
  const { db, engine, destroy } = await openCollectorDb(url);
  const clock = opts.clock ?? systemClock;
  let key;
  try {
    key = await loadSigningKey(db, keyFileFor(url, opts.keyFile), clock);
    await ensureDefaultPolicies(db, key, clock);
  } catch (err) {
    await destroy();
    throw err;
  }
  const ctx: CollectorContext = { db, engine, key, clock };

  const app = Fastify({
    loggerInstance: opts.logger === false || !opts.logger ? undefined : opts.logger,
    logger: opts.logger === false || !opts.logger ? false : undefined,
    bodyLimit: BODY_LIMIT,
    trustProxy: false,
    ...(opts.https ? { https: opts.https } : {}),
  } as never) as unknown as FastifyInstance;

  // One error handler: the contract's body, a real message below 500, a plain one above.
  app.setErrorHandler((error: FastifyError | MamoriError, request, reply) => {
    if (error instanceof MamoriError) {
      return reply.code(HTTP_STATUS[error.code]).send(error.toBody());
    }
    // Hashing or signing what a client sent (an inventory, a policy) found text canonical JSON
    // cannot hold, such as a lone surrogate: the client's data is at fault, not the collector.
    if (error instanceof CanonicalJsonError) {
      return reply.code(400).send({ error: { code: 'validation_failed', message: `body: ${error.message}` } });
    }
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      return reply.code(500).send({ error: { code: 'internal', message: 'the collector could not complete the request' } });
    }
    const message = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `request body larger than ${BODY_LIMIT} bytes` : error.message;
    return reply.code(status).send({ error: { code: errorCodeFor(status), message } });
  });

  await app.register(nulCheck);
  addIngestMetrics(app, ctx);
  const limiters = await registerRateLimits(app, ctx.clock, { ...DEFAULT_RATE_LIMITS, ...opts.rateLimits });
  await registerApi(app, ctx);
  // The console's pages, in a scope of their own with what only they need: security headers for
  // HTML, cookies, forms, static files. The console also answers unknown paths: its 404 page, or
  // the API's JSON 404 under /api/.
  await app.register(async (web) => {
    await web.register(securityHeaders, { secure: !!opts.https });
    await web.register(cookies);
    await web.register(forms);
    await web.register(staticFiles);
    await registerConsole(web, ctx, { secure: !!opts.https, limiters });
  });
  const forwarding = startForwarding(ctx);
  const alerts = startAlerts(ctx, { secretFile: alertSecretFileFor(keyFileFor(url, opts.keyFile)) });
  const retention = startRetentionJob(ctx, { onError: (err) => app.log.error({ err }, 'retention pass failed') });

  return {
    ctx,
    app,
    async listen({ host, port }) {
      await app.listen({ host, port });
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      return `${opts.https ? 'https' : 'http'}://${shownHost}:${actualPort}`;
    },
    async stop() {
      await app.close();
      await forwarding.stop();
      await alerts.stop();
      await retention.stop();
      await destroy();
    },
  };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Reads `HOST:PORT` (`[::1]:8765` for IPv6).
 * @throws UsageError for anything else.
 */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new UsageError(`--listen takes HOST:PORT, not '${listen}'`);
  return { host: (match[1] ?? match[2])!, port };
}

/** The collector's default data directory on each OS. */
export function defaultCollectorDataDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform === 'win32') return path.win32.join(env.ProgramData ?? 'C:\\ProgramData', 'Mamori', 'collector');
  if (platform === 'darwin') return '/Library/Application Support/Mamori/collector';
  return '/var/lib/mamori/collector';
}

/** Reads TLS files, naming the one that cannot be read. */
export function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (file: string, what: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read the TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { cert: read(certFile, 'certificate'), key: read(keyFile, 'key') };
}
