import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const eslint = new ESLint({ cwd: root });

async function layeringErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages.filter((m) => m.ruleId === 'mamori/layering').map((m) => m.message);
}

describe('the layering rule of DESIGN.md', () => {
  it('rejects the agent importing the collector, and the reverse', async () => {
    expect(await layeringErrors('src/agent/x.ts', "import { createCollector } from '../collector/server';\nexport const y = createCollector;\n")).toEqual([
      "src/agent must not import src/collector ('../collector/server'): agent may import only shared.",
    ]);
    expect(await layeringErrors('src/collector/x.ts', "export { openEventStore } from '../agent/store';\n")).toHaveLength(1);
  });

  it('rejects main importing agent code and the renderer importing Node or electron', async () => {
    expect(await layeringErrors('src/main/x.ts', "const s = require('../agent/store');\nexport default s;\n")).toHaveLength(1);
    expect(
      await layeringErrors('src/renderer/x.ts', "import fs from 'node:fs';\nimport { ipcRenderer } from 'electron';\nexport { fs, ipcRenderer };\n"),
    ).toHaveLength(2);
  });

  it('keeps src/shared pure', async () => {
    expect(await layeringErrors('src/shared/x.ts', "import { createHash } from 'crypto';\nexport { createHash };\n")).toEqual([
      "src/shared must not import Node built-in 'crypto': it runs without Node.",
    ]);
  });

  it('allows every layer to import shared', async () => {
    for (const layer of ['agent', 'collector', 'main', 'preload', 'renderer', 'cli']) {
      expect(await layeringErrors(`src/${layer}/x.ts`, "import { canonicalJson } from '../shared';\nexport { canonicalJson };\n")).toEqual([]);
    }
  });
});
