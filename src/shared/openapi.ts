import { z } from 'zod';
import { ErrorBody, HTTP_STATUS } from './errors';
import { HTTP_ROUTES, type HttpRoute } from './http';
import { MAMORI_VERSION } from './version';

// The OpenAPI 3.1 document of the HTTP API, made from HTTP_ROUTES alone (served at
// GET /api/v1/openapi.json, docs/design.md#http-api). Not exported from the shared index: only
// the collector and the docs script need it.

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _draft, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  return rest;
}

/** Each property of an object schema as an OpenAPI parameter `in` the path, query or header. */
function parameters(schema: z.ZodType | undefined, where: 'path' | 'query' | 'header'): JsonSchema[] {
  if (!schema) return [];
  const json = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: s,
  }));
}

function responses(route: HttpRoute): JsonSchema {
  const out: JsonSchema = {};
  for (const [status, schema] of Object.entries(route.response)) {
    if (schema === null) out[status] = { description: 'no body' };
    else if (schema === 'file')
      out[status] = { description: 'a download', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
    else out[status] = { description: 'success', content: { 'application/json': { schema: jsonSchema(schema, 'output') } } };
  }
  const statuses = [...new Set(route.errors.map((code) => HTTP_STATUS[code]))].sort();
  for (const status of statuses) {
    const codes = route.errors.filter((code) => HTTP_STATUS[code] === status);
    out[String(status)] = {
      description: codes.map((c) => `\`${c}\``).join(', '),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } },
    };
  }
  return out;
}

function operation(name: string, route: HttpRoute): JsonSchema {
  const op: JsonSchema = {
    operationId: name,
    summary: route.summary,
    parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query'), ...parameters(route.headers, 'header')],
    responses: responses(route),
  };
  if (route.body)
    op.requestBody = {
      required: !(route.emptyBody && route.body.safeParse({}).success),
      content: { 'application/json': { schema: jsonSchema(route.body, 'input') } },
    };
  if (route.auth.kind === 'agent') op.security = [{ agentToken: [] }];
  if (route.auth.kind === 'roles') {
    op.security = [{ apiToken: [] }];
    op['x-mamori-roles'] = route.auth.roles;
  }
  return op;
}

/** The OpenAPI 3.1 document of every route in `HTTP_ROUTES`. */
export function openApiDocument(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const [name, route] of Object.entries(HTTP_ROUTES) as [string, HttpRoute][]) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(name, route);
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Mamori collector API', version: MAMORI_VERSION },
    paths,
    components: {
      schemas: { ErrorBody: jsonSchema(ErrorBody, 'output') },
      securitySchemes: {
        agentToken: { type: 'http', scheme: 'bearer', description: 'the agentToken of the agent in the path' },
        apiToken: { type: 'http', scheme: 'bearer', description: 'an admin or auditor API token (mam_…)' },
      },
    },
  };
}
