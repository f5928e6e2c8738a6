import fs from 'node:fs';
import path from 'node:path';
import { UUID } from 'builder-util-runtime';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { DEFINES } from './nsis/makensis';
import { ERROR_CODES } from '../../src/shared/errors';
import { EVENT_TYPES } from '../../src/shared/events';
import { HTTP_ROUTES } from '../../src/shared/http';
import { DEGRADED_REASONS, IPC_METHODS } from '../../src/shared/ipc';

// docs/deploy.*.md is what IT pastes into GPO, Intune and SCCM: every name, switch, property,
// variable, path and exit code it gives must be the one the installers use.

const ROOT = path.resolve(__dirname, '../..');
const docs = ['ja', 'en'].map((lang) => ({ lang, text: fs.readFileSync(path.join(ROOT, 'docs', `deploy.${lang}.md`), 'utf8') }));
const nsh = fs.readFileSync(path.join(ROOT, 'packaging', 'windows', 'installer.nsh'), 'utf8');
const msi = fs.readFileSync(path.join(ROOT, 'packaging', 'windows', 'msi-project.js'), 'utf8');
const postinst = fs.readFileSync(path.join(ROOT, 'packaging', 'linux', 'postinst'), 'utf8');
const config = load(fs.readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8')) as {
  appId: string;
  productName: string;
  nsis: { artifactName: string };
  msi: { artifactName: string };
};
const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe.each(docs)('docs/deploy.$lang.md', ({ text }) => {
  it("names the uninstall registry key electron-builder's NSIS installer writes", () => {
    // NsisTarget: guid = UUID v5 of the appId in electron-builder's namespace.
    const guid = UUID.v5(config.appId, UUID.parse('50e065bc-3134-11e6-9bab-38c9862bdaf3'));
    expect(guid).toBe(DEFINES.APP_GUID);
    const keys = [...text.matchAll(/CurrentVersion\\Uninstall\\([0-9a-f-]{36})/g)].map((m) => m[1]);
    expect(keys.length).toBeGreaterThan(0);
    expect(new Set(keys)).toEqual(new Set([guid]));
  });

  it('gives the artifacts, switches, properties and variables the installers take', () => {
    expect(text).toContain(config.nsis.artifactName.replace('${version}', version).replace('${ext}', 'exe'));
    expect(text).toContain(config.msi.artifactName.replace('${version}', version).replace('${ext}', 'msi'));
    for (const p of ['COLLECTOR', 'TOKEN', 'SEGMENT', 'PUBKEY']) {
      expect(text).toContain(`/${p}=`);
      expect(msi).toContain(`"${p}=[${p}]"`);
      expect(text).toContain(`MAMORI_${p}=`);
      expect(postinst).toContain(`"${p}=$MAMORI_${p}"`);
    }
    expect(text).toContain(`Uninstall ${config.productName}.exe`);
    expect(text).toContain('MamoriAgent');
    expect(nsh).toContain('!define MAMORI_SERVICE "MamoriAgent"');
  });

  it('states the exit codes the NSIS include sets', () => {
    const codes = new Set([...nsh.matchAll(/mamoriFail (\d)/g)].map((m) => m[1]));
    expect(codes).toEqual(new Set(['2', '3', '4']));
    expect(nsh).toMatch(/SetErrorLevel 5/);
    for (const c of ['2', '3', '4', '5']) expect(text).toMatch(new RegExp(`\`${c}\``));
  });

  it('shows the provision file with the fields the agent reads', () => {
    const json = /```json\n([\s\S]*?)```/.exec(text)![1]!;
    expect(Object.keys(JSON.parse(json) as object).sort()).toEqual(['collectorPublicKey', 'collectorUrl', 'segment', 'token']);
  });
});

// docs/design.md is the reference code comments cite (`docs/design.md#anchor`) and admins script
// against: a citation must land on a heading, and every contract name in src/shared must be in it.

const design = fs.readFileSync(path.join(ROOT, 'docs', 'design.md'), 'utf8');
const glossary = fs.readFileSync(path.join(ROOT, 'docs', 'glossary.md'), 'utf8');

/** The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split(/\r?\n/)) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** `file: anchor` for every `docs/design.md#anchor` in src/ and README.md, and every link into design.md from the docs. */
function citedAnchors(): string[] {
  const cited: string[] = [];
  const scan = (file: string, text: string, pattern: RegExp) => {
    for (const m of text.matchAll(pattern)) cited.push(`${path.relative(ROOT, file)}: ${m[1]}`);
  };
  for (const file of [...filesUnder(path.join(ROOT, 'src')), path.join(ROOT, 'README.md')]) {
    scan(file, fs.readFileSync(file, 'utf8'), /docs\/design\.md#([\p{L}\p{N}_-]+)/gu);
  }
  scan(path.join(ROOT, 'docs', 'design.md'), design, /\]\(#([\p{L}\p{N}_-]+)\)/gu);
  scan(path.join(ROOT, 'docs', 'glossary.md'), glossary, /design\.md#([\p{L}\p{N}_-]+)/gu);
  return cited;
}

describe('docs/design.md', () => {
  const anchors = headingAnchors(design);

  it('has a heading for every docs/design.md#anchor cited in src/, README.md and the docs', () => {
    const cited = citedAnchors();
    // design.md links its own sections throughout: an empty scan means the pattern broke.
    expect(cited.length).toBeGreaterThan(20);
    expect(cited.filter((c) => !anchors.has(c.slice(c.lastIndexOf(': ') + 2)))).toEqual([]);
  });

  it('reads headings as GitHub anchors them', () => {
    expect([...headingAnchors('# A b\n## HTTP API\n```\n# not a heading\n```\n### Linux enforcement\n## A b\n')]).toEqual([
      'a-b',
      'http-api',
      'linux-enforcement',
      'a-b-1',
    ]);
  });

  it('names every IPC method of src/shared/ipc.ts', () => {
    expect(Object.keys(IPC_METHODS).filter((m) => !design.includes(`| \`${m}\` |`))).toEqual([]);
  });

  it('names every event type of src/shared/events.ts', () => {
    expect(EVENT_TYPES.filter((t) => !design.includes(`| \`${t}\` |`))).toEqual([]);
  });

  it('gives every error code and degraded reason the API and IPC report', () => {
    expect(ERROR_CODES.filter((c) => !design.includes(`| \`${c}\` |`))).toEqual([]);
    expect(DEGRADED_REASONS.filter((r) => !design.includes(`\`${r}\``))).toEqual([]);
  });

  it('lists every HTTP route the collector registers', () => {
    // The collector registers its API from this table (src/collector/routes/api/index.ts).
    const routes = Object.values(HTTP_ROUTES).map((r) => `${r.method} ${r.path}`);
    expect(routes.length).toBeGreaterThan(10);
    expect(routes.filter((r) => !design.includes(`\`${r}\``))).toEqual([]);
  });
});
