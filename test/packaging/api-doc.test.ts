import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiMarkdown } from '../../src/shared/api-doc';
import { HTTP_ROUTES } from '../../src/shared/http';

// docs/api.md is made from the route table; a route changed without `node scripts/api-doc.js`
// leaves it behind, and this fails.

const file = fs.readFileSync(path.resolve(__dirname, '../../docs/api.md'), 'utf8');

describe('docs/api.md', () => {
  it('is what scripts/api-doc.js makes from HTTP_ROUTES', () => {
    expect(file).toBe(apiMarkdown());
  });

  it('has a row for every route, naming its callers and errors', () => {
    for (const [name, r] of Object.entries(HTTP_ROUTES)) {
      const row = file.split('\n').find((line) => line.startsWith(`| \`${r.method} ${r.path}\` | \`${name}\` |`));
      expect(row, name).toBeDefined();
      for (const code of r.errors) expect(row, `${name} ${code}`).toContain(`\`${code}\``);
    }
  });
});
