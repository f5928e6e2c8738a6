import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KEY_FILE_NAME, rotateSigningKey, writeKeyFile } from '../../src/collector/crypto';
import { createCollector, type Collector } from '../../src/collector/server';

// A crash inside `collector key rotate` between replacing the key file and the commit left a key
// file the database does not name: the collector then refused to start ("holds another key").
describe('a key rotation cut short by a crash', () => {
  let dir: string;
  let collector: Collector | undefined;
  const db = () => `sqlite:${path.join(dir, 'collector.db')}`;
  const keyFile = () => path.join(dir, KEY_FILE_NAME);
  const start = async () => (collector = await createCollector({ db: db(), logger: false, keyFile: keyFile() }));
  const stop = async () => {
    await collector?.stop();
    collector = undefined;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-rotate-crash-'));
  });
  afterEach(async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('before the commit: the collector starts with the key its agents pin and the leftover is gone', async () => {
    const pinned = (await start()).ctx.key.publicKey;
    await stop();
    // The state the rotation leaves at the crash: the old key kept aside, a new key in the file.
    fs.copyFileSync(keyFile(), `${keyFile()}.previous`);
    writeKeyFile(keyFile(), crypto.generateKeyPairSync('ed25519').privateKey);

    const restarted = await start();
    expect(restarted.ctx.key.publicKey).toBe(pinned);
    expect(fs.existsSync(`${keyFile()}.previous`)).toBe(false);
    expect(fs.statSync(keyFile()).mode & 0o777).toBe(0o600);
  });

  it('after the commit: the collector keeps the new key and removes the old one from the disk', async () => {
    const first = await start();
    const pinned = first.ctx.key.publicKey;
    fs.copyFileSync(keyFile(), path.join(dir, 'old.key'));
    const rotated = await rotateSigningKey(first.ctx.db, keyFile(), { username: 'cli:root', role: 'admin', address: 'host' });
    await stop();
    // The crash came after the commit and before the leftover was removed.
    fs.copyFileSync(path.join(dir, 'old.key'), `${keyFile()}.previous`);

    const restarted = await start();
    expect(restarted.ctx.key.publicKey).toBe(rotated.publicKey);
    expect(restarted.ctx.key.publicKey).not.toBe(pinned);
    expect(fs.existsSync(`${keyFile()}.previous`)).toBe(false);
  });
});
