import type { FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { VNode } from 'preact';
import { z } from 'zod';
import type { Actor } from '../../admins';
import type { ConsoleSession } from '../../console/auth';
import { createFormatter, DEFAULT_TIME_ZONE, isTimeZone } from '../../console/format';
import { translator, type Lang, type MessageKey } from '../../console/messages';
import { renderPage } from '../../console/render';
import { Problem } from '../../console/views/layout';
import type { Flash, View } from '../../console/views/view';
import type { CollectorContext } from '../../context';
import type { Limiters } from '../../rate-limits';

export interface ConsoleOptions {
  /** Served over TLS: cookies get `Secure` and the `__Host-` prefix. */
  secure: boolean;
  /** The collector's rate limits: sign-ins are counted per address and per account. */
  limiters: Limiters;
}

/** A page or action after the guard (`plugins/guard.ts`) found its session and built its view. */
export type Handler = (request: FastifyRequest, reply: FastifyReply, s: ConsoleSession, v: View) => Promise<unknown>;

/**
 * One form field as a browser sends it: a string, or several strings for a repeated name. The
 * handlers read fields with `str()` and check their values themselves, so a schema of these
 * declares the form without changing what a bad value answers.
 */
export const FormField = z.union([z.string(), z.array(z.string())]).optional();

/** A console form: its fields and the session's CSRF token; fields added by a newer page pass. */
export const form = <T extends z.ZodRawShape>(fields: T) => z.looseObject({ _csrf: FormField, ...fields }).optional();

/** A query string whose values the handler parses (with `.catch` defaults) itself. */
export const AnyQuery = z.record(z.string(), z.unknown()).optional();

export const str = (value: unknown) => (typeof value === 'string' ? value : '');

/** What every console page plugin shares: cookies, views, rendering, flashes and redirects. */
export interface ConsoleKit {
  ctx: CollectorContext;
  opts: ConsoleOptions;
  names: ReturnType<typeof cookieNames>;
  cookieBase: { path: string; httpOnly: boolean; sameSite: 'strict'; secure: boolean };
  langOf(request: FastifyRequest): Lang;
  zoneOf(request: FastifyRequest): string;
  viewFor(request: FastifyRequest, user: ConsoleSession | null, csrf: string, flash?: Flash): View;
  actorOf(request: FastifyRequest, s: ConsoleSession): Actor;
  send(reply: FastifyReply, page: VNode, status?: number): FastifyReply;
  problem(reply: FastifyReply, v: View, status: number, title: MessageKey, body: string): FastifyReply;
  /** A message for the next page, carried in a short-lived cookie (never a secret). */
  flashNext(reply: FastifyReply, kind: Flash['kind'], key: MessageKey, vars?: Record<string, string | number>): void;
  takeFlash(request: FastifyRequest, reply: FastifyReply): Flash | undefined;
  redirect(reply: FastifyReply, to: string): FastifyReply;
  /** A request from another site: an Origin or Fetch Metadata header says so. */
  crossSite(request: FastifyRequest): boolean;
  /** The fastify handler of a guarded page: the guard's session and view passed on. */
  guarded(handler: Handler): RouteHandlerMethod;
}

const cookieNames = (secure: boolean) => ({
  session: secure ? '__Host-mamori_sid' : 'mamori_sid',
  login: secure ? '__Host-mamori_login' : 'mamori_login',
  flash: 'mamori_flash',
  lang: 'mamori_lang',
  tz: 'mamori_tz',
});

/** Builds the helpers the console's page plugins share. */
export function createConsoleKit(ctx: CollectorContext, opts: ConsoleOptions): ConsoleKit {
  const names = cookieNames(opts.secure);
  const cookieBase = { path: '/', httpOnly: true, sameSite: 'strict' as const, secure: opts.secure };
  const langOf = (request: FastifyRequest): Lang => (request.cookies[names.lang] === 'en' ? 'en' : 'ja');
  const zoneOf = (request: FastifyRequest): string => {
    const zone = request.cookies[names.tz];
    return zone && isTimeZone(zone) ? zone : DEFAULT_TIME_ZONE;
  };
  const send = (reply: FastifyReply, page: VNode, status = 200) =>
    reply.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(renderPage(page));
  return {
    ctx,
    opts,
    names,
    cookieBase,
    langOf,
    zoneOf,
    viewFor: (request, user, csrf, flash) => {
      const lang = langOf(request);
      return {
        t: translator(lang),
        fmt: createFormatter(lang, zoneOf(request)),
        lang,
        user: user ? { username: user.username, role: user.role } : null,
        csrf,
        path: request.url,
        flash,
        now: ctx.clock.now(),
      };
    },
    actorOf: (request, s) => ({ username: s.username, role: s.role, address: request.ip }),
    send,
    problem: (reply, v, status, title, body) => send(reply, <Problem v={v} title={v.t(title)} body={body} />, status),
    flashNext: (reply, kind, key, vars = {}) => {
      reply.setCookie(names.flash, Buffer.from(JSON.stringify({ kind, key, vars })).toString('base64url'), { ...cookieBase, maxAge: 60 });
    },
    takeFlash: (request, reply) => {
      const raw = request.cookies[names.flash];
      if (!raw) return undefined;
      reply.clearCookie(names.flash, cookieBase);
      try {
        const { kind, key, vars } = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as {
          kind: Flash['kind'];
          key: MessageKey;
          vars: Record<string, string | number>;
        };
        const t = translator(langOf(request));
        return { kind: kind === 'error' ? 'error' : 'ok', text: t(key, vars) };
      } catch {
        return undefined;
      }
    },
    redirect: (reply, to) => reply.header('cache-control', 'no-store').redirect(to, 303),
    crossSite: (request) => {
      const site = request.headers['sec-fetch-site'];
      if (site === 'cross-site' || site === 'same-site') return true;
      const origin = request.headers.origin;
      return !!origin && origin !== 'null' && origin !== `${request.protocol}://${request.host}`;
    },
    guarded: (handler) =>
      async function (request, reply) {
        const { consoleSession, consoleView } = request;
        if (!consoleSession || !consoleView) throw new Error(`console route ${request.routeOptions.url} ran without the guard`);
        return handler(request, reply, consoleSession, consoleView);
      },
  };
}

/**
 * A local path to return to after login or a language switch, ready for a `Location` header:
 * characters outside printable ASCII are percent-encoded (`/あ` → `/%E3%81%82`), since Node refuses
 * a header holding them. Anything else (another host, control characters, a lone surrogate, over
 * 500 characters) becomes `/`.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || next.length > 500) return '/';
  if (/[\u0000-\u001f\u007f]|\p{Cs}/u.test(next)) return '/';
  return next.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}
