import { z } from 'zod';
import { HTTP_STATUS } from './errors';
import { HTTP_ROUTES, type HttpRoute } from './http';

// docs/api.md, made from HTTP_ROUTES (`node scripts/api-doc.js` writes it; a test fails when the
// file and the table differ). Not exported from the shared index: only the script and tests use it.

/** `{a, b?, c}`: an object schema's fields, optional ones marked; the type for anything else. */
function fields(schema: z.ZodType, io: 'input' | 'output'): string {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as {
    type?: string;
    properties?: Record<string, unknown>;
    required?: string[];
    items?: { properties?: Record<string, unknown> };
  };
  if (json.type === 'array' && json.items?.properties) return `[${fields((schema as z.ZodArray<z.ZodType>).element, io)}]`;
  if (!json.properties) return json.type ?? 'JSON';
  const names = Object.keys(json.properties);
  if (names.length === 0) return 'no fields';
  return `{${names.map((n) => ((json.required ?? []).includes(n) ? n : `${n}?`)).join(', ')}}`;
}

function callers(route: HttpRoute): string {
  if (route.auth.kind === 'none') return 'anyone';
  if (route.auth.kind === 'agent') return 'the agent of the path';
  return route.auth.roles.join(', ');
}

function request(route: HttpRoute): string {
  const parts: string[] = [];
  if (route.query) parts.push(`query ${fields(route.query, 'input')}`);
  if (route.body) parts.push(`body ${fields(route.body, 'input')}${route.emptyBody && route.body.safeParse({}).success ? ' (or none)' : ''}`);
  return parts.join('; ') || '—';
}

function answer(route: HttpRoute): string {
  return Object.entries(route.response)
    .map(([status, schema]) => `${status} ${schema === null ? 'no body' : schema === 'file' ? 'a download' : fields(schema, 'output')}`)
    .join('; ');
}

function errors(route: HttpRoute): string {
  const sorted = [...route.errors].sort((a, b) => HTTP_STATUS[a] - HTTP_STATUS[b]);
  return sorted.map((code) => `${HTTP_STATUS[code]} \`${code}\``).join(', ') || '—';
}

/** The text of docs/api.md. */
export function apiMarkdown(): string {
  const rows = (Object.entries(HTTP_ROUTES) as [string, HttpRoute][]).map(
    ([name, r]) => `| \`${r.method} ${r.path}\` | \`${name}\` | ${callers(r)} | ${request(r)} | ${answer(r)} | ${errors(r)} |`,
  );
  return [
    '# Mamori collector HTTP API',
    '',
    '<!-- Made from HTTP_ROUTES in src/shared/http.ts by `node scripts/api-doc.js` (after `npm run build`); do not edit by hand. -->',
    '',
    'Every route of the collector\'s API, as the table the collector and the agent are built from declares it. Errors are `{"error": {"code", "message"}}` ([design](design.md#error-codes)); a field a schema does not know is refused by name. The same table is served as an OpenAPI 3.1 document at `GET /api/v1/openapi.json`. The meaning of each route is in [docs/design.md](design.md#http-api).',
    '',
    '| route | name | callers | request | answer | errors |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
