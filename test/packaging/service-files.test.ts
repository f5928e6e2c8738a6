import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';

const PKG = path.resolve(__dirname, '../../packaging');
const read = (f: string) => fs.readFileSync(path.join(PKG, f), 'utf8');
const hasSystemd = fs.existsSync('/usr/bin/systemd-analyze');

describe('service definitions', () => {
  it.skipIf(!hasSystemd)('the systemd unit passes systemd-analyze verify (but for the binary only a package installs)', () => {
    const r = spawnSync('systemd-analyze', ['verify', path.join(PKG, 'linux', 'mamori-agent.service')], { encoding: 'utf8' });
    const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/is not executable/.test(l));
    expect(problems).toEqual([]);
  });

  it('the systemd unit restarts always and keeps sysfs and the udev rules writable under its hardening', () => {
    const unit = read('linux/mamori-agent.service');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^Environment=ELECTRON_RUN_AS_NODE=1$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    expect(unit).toMatch(/^ReadWritePaths=.*\/sys\/bus\/usb.*\/etc\/udev\/rules\.d/m);
    // ProtectKernelTunables would make /sys read-only and stop enforcement.
    expect(unit).not.toMatch(/^ProtectKernelTunables=yes/m);
  });

  it('the WinSW definition runs the agent as LocalSystem, automatically, restarting on failure', () => {
    const xml = read('windows/mamori-agent.xml');
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml) as { service: Record<string, unknown> };
    expect(doc.service).toMatchObject({ id: 'MamoriAgent', startmode: 'Automatic', serviceaccount: { username: 'LocalSystem' }, env: { name: 'ELECTRON_RUN_AS_NODE', value: '1' } });
    expect((doc.service.onfailure as { action: string }[]).every((f) => f.action === 'restart')).toBe(true);
    expect(String(doc.service.arguments)).toContain('agent run');
  });

  it('the launchd daemon keeps the agent alive', () => {
    const plist = read('macos/jp.mamori.agent.plist');
    expect(XMLValidator.validate(plist)).toBe(true);
    expect(plist).toMatch(/<key>KeepAlive<\/key>\s*<true\/>/);
  });

  it('the deb maintainer scripts are valid shell and restore the OS controls on removal', () => {
    for (const script of ['postinst', 'prerm']) execFileSync('sh', ['-n', path.join(PKG, 'linux', script)]);
    const prerm = read('linux/prerm');
    expect(prerm).toContain('70-mamori-usb.rules');
    expect(prerm).toContain('interface_authorized_default');
  });
});
