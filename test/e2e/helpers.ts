import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const MAMORI = path.join(ROOT, 'bin', 'mamori.js');

/** The e2e suites run the built CLI; `npm test` builds it first. */
export function requireBuild(): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before the e2e suites (npm test does)');
  }
}
