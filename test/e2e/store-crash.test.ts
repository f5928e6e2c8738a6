import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openEventStore } from '../../src/agent/store';
import { requireBuild } from './helpers';

const KILLS = 50;
let dir: string;

beforeAll(() => {
  requireBuild();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-crash-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the appender, kills it with SIGKILL after `ms`, and returns the last seq it reported. */
function appendThenKill(file: string, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'children', 'append-forever.js'), file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (!out.includes('ready') && (out + chunk).includes('ready')) setTimeout(() => child.kill('SIGKILL'), ms);
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`appender ended by itself: ${out.slice(-200)}`));
      const lines = out.split('\n');
      lines.pop(); // a line without its newline was not fully reported
      const seqs = lines.filter((l) => /^\d+$/.test(l)).map(Number);
      resolve(seqs.length ? seqs[seqs.length - 1]! : 0);
    });
  });
}

it(`keeps every returned append and an intact chain across ${KILLS} kills at random moments`, async () => {
  const file = path.join(dir, 'agent.db');
  let reported = 0;
  for (let i = 0; i < KILLS; i++) {
    const last = await appendThenKill(file, Math.floor(Math.random() * 60));
    reported = Math.max(reported, last);
    const store = openEventStore(file);
    try {
      expect(store.verify()).toBeNull();
      expect(store.head().seq).toBeGreaterThanOrEqual(reported);
    } finally {
      store.close();
    }
  }
  expect(reported).toBeGreaterThan(KILLS); // the kills really landed mid-stream
});
