import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from './helpers';

/** A certificate authority and a server certificate for `siem.test` and 127.0.0.1, made by certtool. */
export interface TestPki {
  ca: string;
  cert: string;
  key: string;
}

export function makePki(dir: string): TestPki {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('ca.tmpl'), 'cn = "Mamori test CA"\nca\ncert_signing_key\nexpiration_days = 2\n');
  certtool(['--generate-privkey', '--key-type', 'ecdsa', '--outfile', file('ca-key.pem')]);
  certtool(['--generate-self-signed', '--load-privkey', file('ca-key.pem'), '--template', file('ca.tmpl'), '--outfile', file('ca.pem')]);
  return issue(dir, 'siem.test');
}

/** A server certificate for `name` (and 127.0.0.1) from the CA `makePki` made in `dir`. */
export function issue(dir: string, name: string): TestPki {
  const file = (f: string) => path.join(dir, f);
  fs.writeFileSync(
    file(`${name}.tmpl`),
    `cn = "${name}"\ndns_name = "${name}"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n`,
  );
  certtool(['--generate-privkey', '--key-type', 'ecdsa', '--outfile', file(`${name}-key.pem`)]);
  certtool([
    '--generate-certificate',
    '--load-privkey',
    file(`${name}-key.pem`),
    '--load-ca-certificate',
    file('ca.pem'),
    '--load-ca-privkey',
    file('ca-key.pem'),
    '--template',
    file(`${name}.tmpl`),
    '--outfile',
    file(`${name}.pem`),
  ]);
  return { ca: file('ca.pem'), cert: file(`${name}.pem`), key: file(`${name}-key.pem`) };
}

function certtool(args: string[]): void {
  execFileSync('certtool', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A real rsyslogd on 127.0.0.1 writing each received message's raw text as one line of a file. */
export interface Rsyslog {
  port: number;
  output: string;
  /** The lines written so far (complete lines only). */
  lines(): string[];
  start(): Promise<void>;
  /** Stops it with `signal` and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Configures an rsyslogd in `dir` (imtcp, or imtcp with gtls), without imuxsock or imklog, its
 * work directory and pid file in `dir`; `start()` runs it as a child in the foreground (`-n`).
 */
export function rsyslog(dir: string, port: number, tls?: TestPki): Rsyslog {
  fs.mkdirSync(path.join(dir, 'work'), { recursive: true });
  const output = path.join(dir, 'received.log');
  const conf = path.join(dir, 'rsyslog.conf');
  const driver = tls
    ? `DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${tls.ca}" DefaultNetstreamDriverCertFile="${tls.cert}" DefaultNetstreamDriverKeyFile="${tls.key}"`
    : '';
  fs.writeFileSync(
    conf,
    [
      `global(workDirectory="${path.join(dir, 'work')}" maxMessageSize="64k" ${driver})`,
      tls ? 'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")' : 'module(load="imtcp")',
      `input(type="imtcp" address="127.0.0.1" port="${port}")`,
      'template(name="raw" type="string" string="%rawmsg%\\n")',
      `*.* action(type="omfile" file="${output}" template="raw")`,
      '',
    ].join('\n'),
  );
  execFileSync('rsyslogd', ['-N1', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let child: ChildProcess | undefined;
  let log = '';
  return {
    port,
    output,
    lines() {
      if (!fs.existsSync(output)) return [];
      const text = fs.readFileSync(output, 'utf8');
      const end = text.lastIndexOf('\n');
      return end < 0 ? [] : text.slice(0, end).split('\n');
    },
    async start() {
      const pidFile = path.join(dir, 'rsyslogd.pid');
      fs.rmSync(pidFile, { force: true });
      child = spawn('rsyslogd', ['-f', conf, '-i', pidFile, '-n'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const net = await import('node:net');
      await waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port }, () => {
              s.destroy();
              resolve(true);
            });
            s.on('error', () => resolve(false));
          }),
        `rsyslogd to listen on ${port} (${log})`,
      );
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill(signal);
      await exited;
    },
  };
}
