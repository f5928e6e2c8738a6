import type { FastifyInstance } from 'fastify';

/** One method of one registered route, as fastify knows it (`/api/v1/agents/:agentId/events`). */
export interface RouteEntry {
  method: string;
  url: string;
}

/**
 * Every route the app registered, read from fastify's radix tree (`app.printRoutes()`) after it is
 * ready, so a route added tomorrow is in the list without anyone editing a test. A line this
 * parser does not understand throws rather than being skipped, so the list cannot silently shrink.
 */
export async function listRoutes(app: FastifyInstance): Promise<RouteEntry[]> {
  await app.ready();
  // The radix tree: each node's label is a piece of the path, so a route is its labels joined.
  const tree = app.printRoutes();
  const stack: string[] = [];
  const out: RouteEntry[] = [];
  for (const line of tree.split('\n')) {
    if (!line.trim()) continue;
    // Each level of depth is four characters ("│   " or "    "), then "├── " / "└── ".
    const match = /^((?:[│ ] {3})*)(?:[├└]── )(.+?)(?: \(([A-Z, ]+)\))?$/u.exec(line);
    if (!match) throw new Error(`cannot read printRoutes line: ${JSON.stringify(line)}`);
    const depth = match[1]!.length / 4;
    const segment = match[2]!;
    stack.length = depth;
    const url = `${depth === 0 ? '' : stack[depth - 1]!}${segment}`;
    stack[depth] = url;
    for (const method of match[3] ? match[3].split(', ') : []) out.push({ method, url });
  }
  // Sanity: the parser saw what fastify serves.
  for (const r of out) {
    if (!app.hasRoute({ method: r.method as 'GET', url: r.url })) throw new Error(`printRoutes named ${r.method} ${r.url}, which fastify does not have`);
  }
  return out.sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method));
}
