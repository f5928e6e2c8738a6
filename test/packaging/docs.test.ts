import fs from 'node:fs';
import path from 'node:path';
import { UUID } from 'builder-util-runtime';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { DEFINES } from './nsis/makensis';

// docs/deploy.*.md is what IT pastes into GPO, Intune and SCCM: every name, switch, property,
// variable, path and exit code it gives must be the one the installers use.

const ROOT = path.resolve(__dirname, '../..');
const docs = ['ja', 'en'].map((lang) => ({ lang, text: fs.readFileSync(path.join(ROOT, 'docs', `deploy.${lang}.md`), 'utf8') }));
const nsh = fs.readFileSync(path.join(ROOT, 'packaging', 'windows', 'installer.nsh'), 'utf8');
const msi = fs.readFileSync(path.join(ROOT, 'packaging', 'windows', 'msi-project.js'), 'utf8');
const postinst = fs.readFileSync(path.join(ROOT, 'packaging', 'linux', 'postinst'), 'utf8');
const config = load(fs.readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8')) as { appId: string; productName: string; nsis: { artifactName: string }; msi: { artifactName: string } };
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
