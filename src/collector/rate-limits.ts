import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MamoriError, type Clock } from '../shared';
import { tokenHash } from './crypto';

/** At most `max` requests in any `windowMs` (a fixed window that starts at the first request). */
export interface RateLimit {
  max: number;
  windowMs: number;
}

/**
 * The collector's rate limits. Agent routes are counted per agent id, never per address: a whole
 * office behind one NAT address syncs at 08:30 and must pass.
 */
export interface RateLimits {
  /** Console sign-ins from one address. */
  loginPerAddress: RateLimit;
  /** Console sign-ins naming one account, from anywhere (the lockout counts failures only). */
  loginPerAccount: RateLimit;
  /** `POST /api/v1/enroll` from one address. */
  enrollPerAddress: RateLimit;
  /** `POST /api/v1/enroll` with one token. */
  enrollPerToken: RateLimit;
  /** `/api/v1/agents/{id}/…` for one agent id. */
  agentPerAgent: RateLimit;
  /** `/api/v1/admin/…` from one address. */
  adminPerAddress: RateLimit;
  /** `/api/v1/admin/…` with one bearer token. */
  adminPerToken: RateLimit;
}
export type RateLimitName = keyof RateLimits;

/**
 * Limits no real fleet reaches: 1,000 terminals enrolling through one address in ten minutes, an
 * agent uploading a week of backlog (500 events a batch), an admin script paging the audit log.
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  loginPerAddress: { max: 30, windowMs: 60_000 },
  loginPerAccount: { max: 10, windowMs: 60_000 },
  enrollPerAddress: { max: 1_000, windowMs: 600_000 },
  enrollPerToken: { max: 1_000, windowMs: 600_000 },
  agentPerAgent: { max: 600, windowMs: 60_000 },
  adminPerAddress: { max: 1_200, windowMs: 60_000 },
  adminPerToken: { max: 600, windowMs: 60_000 },
};

/** Counts one request against a limit; what is left, and how long to wait once over it. */
export interface Limiters {
  /** Counts the request under `key`; the seconds to wait when it is over the limit, else null. */
  take(name: RateLimitName, request: FastifyRequest, key: string): Promise<number | null>;
  /**
   * `take`, and over the limit sets `Retry-After`.
   * @throws MamoriError rate_limited (429).
   */
  enforce(name: RateLimitName, request: FastifyRequest, reply: FastifyReply, key: string): Promise<void>;
}

/** Most keys a limit remembers; beyond it the oldest window is forgotten (memory stays bounded). */
const MAX_KEYS = 50_000;

/** @fastify/rate-limit's store contract, counting on the collector's clock instead of Date.now. */
function clockStore(clock: Clock) {
  return class ClockStore {
    private windows = new Map<string, { current: number; start: number }>();
    incr(key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number): void {
      const now = clock.now().getTime();
      let w = this.windows.get(key);
      if (!w || w.start + timeWindow <= now) {
        this.windows.delete(key);
        if (this.windows.size >= MAX_KEYS) this.windows.delete(this.windows.keys().next().value!);
        w = { current: 0, start: now };
        this.windows.set(key, w);
      }
      w.current += 1;
      cb(null, { current: w.current, ttl: w.start + timeWindow - now });
    }
    child(): ClockStore {
      return new ClockStore();
    }
  };
}

const bearerOf = (request: FastifyRequest): string | undefined => /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];

/**
 * Registers the limits on the collector (@fastify/rate-limit with a store on `clock`): enrollment
 * per address and per token, agent routes per agent id, admin routes per address and per token,
 * every current and future route under those prefixes. Returns the limiters, for the console's
 * sign-in (per address and per account).
 */
export async function registerRateLimits(app: FastifyInstance, clock: Clock, limits: RateLimits): Promise<Limiters> {
  await app.register(fastifyRateLimit, { global: false, store: clockStore(clock) as never });
  const keys = new WeakMap<FastifyRequest, string>();
  const checks = Object.fromEntries(
    (Object.keys(limits) as RateLimitName[]).map((name) => [
      name,
      app.createRateLimit({ max: limits[name].max, timeWindow: limits[name].windowMs, keyGenerator: (request) => keys.get(request) ?? request.ip }),
    ]),
  ) as Record<RateLimitName, ReturnType<FastifyInstance['createRateLimit']>>;

  const take: Limiters['take'] = async (name, request, key) => {
    keys.set(request, `${name}:${key}`);
    const result = await checks[name](request);
    return !result.isAllowed && result.isExceeded ? Math.max(1, result.ttlInSeconds) : null;
  };
  const enforce: Limiters['enforce'] = async (name, request, reply, key) => {
    const wait = await take(name, request, key);
    if (wait === null) return;
    reply.header('retry-after', String(wait));
    throw new MamoriError('rate_limited', `too many requests; retry in ${wait} s`);
  };

  app.addHook('onRequest', async (request, reply) => {
    const url = request.routeOptions.url ?? '';
    if (url === '/api/v1/enroll') await enforce('enrollPerAddress', request, reply, request.ip);
    else if (url.startsWith('/api/v1/agents/:agentId/'))
      await enforce('agentPerAgent', request, reply, String((request.params as { agentId?: unknown }).agentId).slice(0, 100));
    else if (url.startsWith('/api/v1/admin/')) {
      await enforce('adminPerAddress', request, reply, request.ip);
      const bearer = bearerOf(request);
      if (bearer) await enforce('adminPerToken', request, reply, tokenHash(bearer));
    }
  });
  // The enrollment token is in the body, read only after parsing.
  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.url !== '/api/v1/enroll') return;
    const token = (request.body as { token?: unknown } | null | undefined)?.token;
    if (typeof token === 'string') await enforce('enrollPerToken', request, reply, tokenHash(token));
  });
  return { take, enforce };
}
