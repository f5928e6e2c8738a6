import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The agent builds its sync client from src/shared/http.ts, so what that module loads the agent
// service loads: zod and the shared schemas, never fastify or anything of the collector.

const SHARED = path.resolve(__dirname, '../../src/shared');

/** Every package a shared module loads, following its relative imports (type-only ones load nothing). */
function packagesLoadedBy(file: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  if (seen.has(file)) return out;
  seen.add(file);
  const text = fs.readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^import\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) {
    if (m[1]) continue;
    const spec = m[2]!;
    if (spec.startsWith('.')) for (const p of packagesLoadedBy(path.join(path.dirname(file), `${spec}.ts`), seen)) out.add(p);
    else out.add(spec);
  }
  return out;
}

describe('src/shared/http.ts', () => {
  it('loads only zod and the hashing library, nothing of fastify or the collector', () => {
    const loaded = [...packagesLoadedBy(path.join(SHARED, 'http.ts'))].sort();
    expect(loaded).toContain('zod');
    expect(loaded.filter((p) => p !== 'zod' && !p.startsWith('@noble/'))).toEqual([]);
  });
});
