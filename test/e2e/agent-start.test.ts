import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, requireBuild } from './helpers';

beforeAll(() => requireBuild());

/**
 * The packages `mamori agent run` has loaded at the moment its start-up pass has enforced the
 * stored policy: the real CLI entry, the real command, the real pass (on an empty data directory).
 */
function packagesLoadedBeforeEnforcing(): string[] {
  const script = `
    const Module = require('node:module');
    const seen = new Set();
    const load = Module._load;
    Module._load = function (request, parent, isMain) {
      const file = Module._resolveFilename(request, parent, isMain);
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(file);
      if (m) seen.add(m[1]);
      return load.apply(this, arguments);
    };
    (async () => {
      await require(${JSON.stringify(path.join(ROOT, 'dist', 'cli', 'index.js'))}).createProgram(['node', 'mamori', 'agent', 'run']);
      const { enforceStoredPolicy } = require(${JSON.stringify(path.join(ROOT, 'dist', 'agent', 'start-enforcement.js'))});
      await enforceStoredPolicy({ dataDir: '/nonexistent-mamori', systemRoot: '/nonexistent-mamori' });
      process.stdout.write(JSON.stringify([...seen].sort()));
    })();`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
}

describe('mamori agent run, as a terminal starts it', () => {
  // The service used to load every schema, its logger and the inventory's probes (about 300 ms
  // on a loaded 2-core machine) before enforcing anything, so a stick plugged in while the agent
  // was stopped stayed usable that long after the service started.
  it('enforces the stored policy before loading the schemas, the logger, the probes or the collector', () => {
    const loaded = packagesLoadedBeforeEnforcing();
    expect(loaded).toEqual(expect.arrayContaining(['better-sqlite3', 'commander']));
    for (const heavy of ['zod', 'pino', 'systeminformation', 'usb-detection', 'kysely', 'fastify', 'exceljs', 'pg', 'preact']) expect(loaded).not.toContain(heavy);
  });
});
