import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';

/** What `mamori start` remembers between runs, under `./var/start.json` (mode 0600). */
interface StartState {
  adminUser: string;
  adminToken: string;
  segment: string;
  enrolled: boolean;
}

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'mamori.js');

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Runs `mamori ARGS` to completion and returns its stdout; throws with its stderr on failure. */
function runMamori(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new Error(`mamori ${args.slice(0, 3).join(' ')} failed: ${err.trim().split('\n').pop() ?? code}`));
    });
  });
}

/** Starts a long-running `mamori` child whose output is prefixed and passed through. */
function startChild(name: string, args: string[], onLine?: (line: string) => void): ChildProcess {
  // Only warnings and errors reach the console unless MAMORI_START_VERBOSE asks for everything.
  const env = { ...process.env, MAMORI_LOG_LEVEL: process.env.MAMORI_LOG_LEVEL ?? (process.env.MAMORI_START_VERBOSE ? 'info' : 'warn') };
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const pipe = (stream: NodeJS.ReadableStream, to: NodeJS.WriteStream) => {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        onLine?.(line);
        if (process.env.MAMORI_START_VERBOSE || to === process.stderr) to.write(`[${name}] ${line}\n`);
      }
    });
  };
  pipe(child.stdout!, process.stdout);
  pipe(child.stderr!, process.stderr);
  return child;
}

async function waitForHealth(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error('the collector exited during start-up (see its messages above)');
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`the collector did not answer at ${url} within ${timeoutMs / 1000} s`);
}

/** The Electron binary when it is installed (not only its npm package, as on a closed network). */
function electronBinary(): string | null {
  try {
    // The electron package records its binary's path in path.txt once the download succeeded.
    const dir = path.dirname(require.resolve('electron/package.json'));
    const rel = fs.readFileSync(path.join(dir, 'path.txt'), 'utf8').trim();
    const binary = path.join(dir, 'dist', rel);
    return fs.existsSync(binary) ? binary : null;
  } catch {
    return null;
  }
}

function stopAll(children: ChildProcess[]): Promise<void> {
  return Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  ).then(() => undefined);
}

/** What `mamori start` prints once everything runs. */
function printBanner(o: { url: string; state: StartState; password: string | null; stateFile: string; varDir: string; enforce: boolean; tray: boolean }): void {
  say('Mamori is running.');
  say(`  console and API: ${o.url}/`);
  say(`  admin user:      ${o.state.adminUser}`);
  if (o.password) {
    say(`  admin password:  ${o.password}   (shown once; saved nowhere)`);
    say(`  admin API token: ${o.state.adminToken}   (also in ${o.stateFile})`);
  } else {
    say(`  admin API token: in ${o.stateFile}`);
  }
  say(`  agent:           enrolled in segment ${o.state.segment}${o.enforce ? '' : ' (audit only: nothing on this machine is blocked)'}`);
  say(`  ledger export:   MAMORI_ADMIN_TOKEN=… node bin/mamori.js export inventory --collector ${o.url} --format csv -o ledger.csv`);
  say(`  data:            ${o.varDir}`);
  say(o.tray ? '  tray:            started' : '  tray:            not started: the Electron binary is not installed (on a connected machine: node node_modules/electron/install.js)');
  say('Press Ctrl-C to stop.');
}

/** Resolves once stopping, or once the collector or the agent exited (then stops the rest, exit 1). */
function untilStoppedOrDead(children: ChildProcess[], isStopping: () => boolean, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const check = () => {
      if (isStopping()) return resolve();
      const dead = children.slice(0, 2).find((c) => c.exitCode !== null);
      if (dead) {
        process.stderr.write(`mamori: a component exited (code ${dead.exitCode}); stopping\n`);
        void stop().then(() => {
          process.exitCode = 1;
          resolve();
        });
        return;
      }
      setTimeout(check, 250);
    };
    check();
  });
}

/**
 * `mamori start`: a local collector on embedded SQLite under ./var, an admin, and this machine's
 * agent enrolled in an audit-only segment (or `mynumber` with --enforce), syncing. Ctrl-C stops
 * everything; a second start reuses the same data.
 */
export async function runStart(opts: { enforce?: boolean; listen?: string; dir?: string }): Promise<void> {
  const varDir = path.resolve(opts.dir ?? 'var');
  const collectorDir = path.join(varDir, 'collector');
  const agentDir = path.join(varDir, 'agent');
  const stateFile = path.join(varDir, 'start.json');
  const listen = opts.listen ?? '127.0.0.1:8765';
  const url = `http://${listen}`;
  fs.mkdirSync(collectorDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(agentDir, { recursive: true, mode: 0o700 });

  let state: StartState | null = fs.existsSync(stateFile) ? (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as StartState) : null;
  const save = (s: StartState) => fs.writeFileSync(stateFile, JSON.stringify(s, null, 2), { mode: 0o600 });
  let password: string | null = null;
  if (!state) {
    password = crypto.randomBytes(12).toString('base64url');
    const adminToken = await runMamori(['collector', 'admin', 'add', 'admin', '--role', 'admin', '--data-dir', collectorDir], {
      MAMORI_ADMIN_PASSWORD: password,
    });
    state = { adminUser: 'admin', adminToken, segment: opts.enforce ? 'mynumber' : 'internet', enrolled: false };
    save(state);
  }

  const children: ChildProcess[] = [];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('\nstopping…');
    await stopAll(children);
    say('stopped.');
  };

  const collector = startChild('collector', ['collector', 'serve', '--listen', listen, '--data-dir', collectorDir]);
  children.push(collector);
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  try {
    await waitForHealth(url, collector);
    if (!state.enrolled) {
      const token = await runMamori(['collector', 'token', 'create', '--segment', state.segment, '--uses', '1', '--data-dir', collectorDir]);
      await runMamori(['agent', 'enroll', '--collector', url, '--token', token, '--data-dir', agentDir]);
      state = { ...state, enrolled: true };
      save(state);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  if (opts.enforce && process.getuid?.() !== 0) {
    say('warning: --enforce needs root to change USB authorization; the agent will report protection degraded');
  }
  const agent = startChild('agent', ['agent', 'run', '--data-dir', agentDir, '--ipc', path.join(agentDir, 'agent.sock')]);
  children.push(agent);

  const electron = electronBinary();
  if (electron) {
    const tray = spawn(electron, [path.resolve(__dirname, '..', '..')], {
      stdio: 'inherit',
      env: { ...process.env, MAMORI_IPC: path.join(agentDir, 'agent.sock') },
    });
    children.push(tray);
  }

  printBanner({ url, state, password, stateFile, varDir, enforce: !!opts.enforce, tray: !!electron });

  await untilStoppedOrDead(children, () => stopping, stop);
  await stopAll(children);
}

/** Adds `mamori start` to the program. */
export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('local all-in-one: collector on SQLite under ./var, an admin, and this machine’s agent (tray when Electron is present)')
    .option('--enforce', 'enroll in the mynumber segment (block) instead of an audit-only one')
    .option('--listen <host:port>', 'collector address', '127.0.0.1:8765')
    .action(async (opts: { enforce?: boolean; listen: string }) => {
      await runStart(opts);
    });
}
