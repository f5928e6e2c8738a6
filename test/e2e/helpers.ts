import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const ROOT = path.resolve(__dirname, '../..');
export const MAMORI = path.join(ROOT, 'bin', 'mamori.js');

/** The e2e suites run the built CLI; `npm test` builds it first. */
export function requireBuild(): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before the e2e suites (npm test does)');
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `mamori ARGS` as a user would and collects its output. */
export function mamori(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAMORI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A long-running `mamori` process, e.g. `collector serve`, with its output so far. */
export interface Running {
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export function startMamori(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [MAMORI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return {
    child,
    output: () => out,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      }),
  };
}

/** Waits until `predicate` holds, polling; throws with `what` after the timeout. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A collector process on a free loopback port, with one admin (or auditor) and its token. */
export interface TestCollector {
  url: string;
  data: string;
  /** The API token of the account `startCollector` made. */
  admin: string;
  proc: Running;
  /** A single-use enrollment token for a segment. */
  token(segment: 'mynumber' | 'lgwan' | 'internet'): Promise<string>;
  /** An admin API call with the account's token; the body is parsed JSON. */
  api<T = unknown>(route: string, init?: { method?: string; body?: unknown }): Promise<{ status: number; body: T }>;
  stop(): Promise<number | null>;
}

export async function startCollector(data: string, role: 'admin' | 'auditor' = 'admin', port?: number): Promise<TestCollector> {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startMamori(['collector', 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', data]);
  await waitFor(() => proc.output().includes('listening on'), 'the collector to listen');
  const added = await mamori(['collector', 'admin', 'add', role === 'admin' ? 'kanri' : 'kansa', '--role', role, '--data-dir', data], {
    MAMORI_ADMIN_PASSWORD: 'correct horse battery staple',
  });
  if (added.code !== 0) throw new Error(`admin add failed: ${added.stderr}`);
  const admin = added.stdout.trim();
  return {
    url,
    data,
    admin,
    proc,
    async token(segment) {
      return (await mamori(['collector', 'token', 'create', '--segment', segment, '--data-dir', data])).stdout.trim();
    },
    async api(route, init = {}) {
      const res = await fetch(`${url}${route}`, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${admin}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      });
      return { status: res.status, body: (await res.json()) as never };
    },
    stop: () => proc.stop(),
  };
}

/** Debian's Chromium (CI installs it); Playwright's own browser download is never used. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/lib/chromium/chromium'].find((p) => fs.existsSync(p));

/** Starts Debian's Chromium headless, without the background traffic a closed network refuses. */
export async function launchChromium(): Promise<Browser> {
  if (!CHROMIUM) throw new Error('Chromium is not installed: apt-get install chromium (.ci/run does)');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
