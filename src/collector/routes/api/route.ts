import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { HEAD_HEADER, HTTP_ROUTES, MamoriError, AgentParams, type HttpRoute, type HttpRouteName } from '../../../shared';
import { authenticateAdmin, type Actor } from '../../admins';
import { authenticateAgent } from '../../agents';
import type { CollectorContext } from '../../context';
import type { AgentsTable } from '../../db/schema';
import { parse } from './parse';

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/** Who called: the admin (routes with roles) or the agent of the path (agent routes). */
type Caller<R extends HttpRoute> = R['auth'] extends { kind: 'roles' }
  ? { actor: Actor }
  : R['auth'] extends { kind: 'agent' }
    ? { agent: AgentsTable }
    : object;

/** What a route's handler is given: the request's parts as its schemas parsed them, and the caller. */
export type RouteInput<R extends HttpRoute> = {
  params: Out<R['params']>;
  query: Out<R['query']>;
  body: Out<R['body']>;
  request: FastifyRequest;
  reply: FastifyReply;
} & Caller<R>;

/** The 200 answer a handler returns (checked against the table's schema), or the reply it sent itself. */
type Answer<R extends HttpRoute> = R['response'] extends { 200: infer S } ? (S extends z.ZodType ? z.input<S> : FastifyReply) : FastifyReply;

export type RouteHandler<N extends HttpRouteName> = (input: RouteInput<(typeof HTTP_ROUTES)[N]>) => Promise<Answer<(typeof HTTP_ROUTES)[N]>>;

/** One handler per route of the table; a route without one does not compile. */
export type RouteHandlers<N extends HttpRouteName = HttpRouteName> = { [K in N]: RouteHandler<K> };

export interface RouteOptions {
  /** Hand a refused body to the handler (`request.validationError`) instead of answering at once. */
  attachValidation?: boolean;
  /** Runs after authentication, before validation (to complete a body from the path). */
  prepare?: (request: FastifyRequest) => void;
}

const WHAT: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

/**
 * Validates with the table's zod schemas through `parse`, so a refusal keeps the API's error
 * body (400 `validation_failed` naming the field, an unknown field refused by name). Headers are
 * checked without refusing the ones a schema does not name. fastify-type-provider-zod's own
 * compiler answers with fastify's validation error instead, and strips unknown fields.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const what = WHAT[httpPart ?? 'body'] ?? 'body';
  return (data) => {
    const value = data === null && what === 'body' ? undefined : data;
    if (what === 'header') {
      const result = schema.safeParse(value);
      return result.success
        ? { value: result.data }
        : { error: new MamoriError('validation_failed', `header: ${result.error.issues[0]?.message ?? 'invalid'}`) };
    }
    try {
      return { value: parse(schema, value, what) };
    } catch (err) {
      return { error: err as Error };
    }
  };
};

/**
 * Checks an answer against the table's schema and sends it as the handler made it: nothing is
 * dropped or renamed (a signed policy must reach the agent byte for byte as signed). An answer
 * that does not match is the collector's bug: a logged 500.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = ({ schema, method, url, httpStatus }) => {
  return (data) => {
    const result = schema.safeParse(data);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new Error(`the answer of ${method} ${url} (${httpStatus}) does not match its schema: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`);
    }
    return JSON.stringify(data);
  };
};

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

/** The `mamori-head` header of an agent call, when it sent one (a repeated header is refused). */
function headHeader(request: FastifyRequest): string | undefined {
  const value = request.headers[HEAD_HEADER];
  if (Array.isArray(value)) throw new MamoriError('validation_failed', `header ${HEAD_HEADER}: given more than once`);
  return value;
}

/**
 * Resolves the caller a route's `auth` asks for. An agent route checks its path first (a
 * malformed id is a 400 before any token is looked at), then the agent's token, noting the head
 * it reports; a role route checks the API token and the role before reading anything else.
 * @throws MamoriError validation_failed, unauthorized, forbidden.
 */
async function authenticate(ctx: CollectorContext, route: HttpRoute, request: FastifyRequest): Promise<{ actor?: Actor; agent?: AgentsTable }> {
  if (route.auth.kind === 'agent') {
    const { agentId } = parse(AgentParams, request.params, 'path');
    return { agent: await authenticateAgent(ctx.db, agentId, bearer(request), ctx.clock, headHeader(request)) };
  }
  if (route.auth.kind === 'roles') {
    const { username, role } = await authenticateAdmin(ctx.db, bearer(request));
    if (!route.auth.roles.includes(role)) throw new MamoriError('forbidden', `the ${role} role may not do this`);
    return { actor: { username, role, address: request.ip } };
  }
  return {};
}

/** `/api/v1/agents/{agentId}/events` → fastify's `/api/v1/agents/:agentId/events`. */
export function fastifyUrl(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

/** The schemas fastify validates and serializes with (no error bodies: the error handler writes those). */
function fastifySchema(route: HttpRoute): FastifySchema {
  const response = Object.fromEntries(Object.entries(route.response).filter((entry): entry is [string, z.ZodType] => entry[1] !== null && entry[1] !== 'file'));
  const parts = { params: route.params, querystring: route.query, body: route.body, headers: route.headers };
  // A part left out, not set to undefined: fastify warns about every undefined one.
  return { ...Object.fromEntries(Object.entries(parts).filter((entry) => entry[1] !== undefined)), response };
}

const callers = new WeakMap<FastifyRequest, { actor?: Actor; agent?: AgentsTable }>();

/** Registers one route of `HTTP_ROUTES` on `app` (whose compilers are the two above). */
export function registerRoute<N extends HttpRouteName>(
  app: FastifyInstance,
  ctx: CollectorContext,
  name: N,
  handler: RouteHandler<N>,
  opts: RouteOptions = {},
): void {
  const route: HttpRoute = HTTP_ROUTES[name];
  app.withTypeProvider<ZodTypeProvider>().route({
    method: route.method,
    url: fastifyUrl(route.path),
    schema: fastifySchema(route),
    attachValidation: opts.attachValidation ?? false,
    preValidation: async (request) => {
      callers.set(request, await authenticate(ctx, route, request));
      if (route.emptyBody && request.body === undefined) request.body = {};
      opts.prepare?.(request);
    },
    handler: async (request, reply) => {
      const input = { params: request.params, query: request.query, body: request.body, request, reply, ...callers.get(request) };
      return handler(input as unknown as RouteInput<(typeof HTTP_ROUTES)[N]>);
    },
  });
}
