import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { STATE_KEYS } from '../../src/agent/state-keys';

describe('agent state keys', () => {
  it('gives every key its own name, so two parts of the agent never overwrite each other', () => {
    const values = Object.values(STATE_KEYS);
    expect(new Set(values).size).toBe(values.length);
  });

  it('documents every key in docs/design.md', () => {
    const design = fs.readFileSync(path.resolve(__dirname, '../../docs/design.md'), 'utf8');
    const section = design.slice(design.indexOf('### Agent state keys'), design.indexOf('### Collector database'));
    expect(Object.values(STATE_KEYS).filter((key) => !section.includes(`\`${key}\``))).toEqual([]);
  });
});
