import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { MamoriError, UsageError, systemClock } from '../../shared';
import { openCollectorDb, parseDbUrl } from '../db/connect';
import { DEFAULT_FORWARDING, renderBatch } from '../forward/forwarder';
import type { ForwardRecord } from '../forward/format';
import { FORMATS, TRANSPORTS, addDestination, getDestination, listDestinations, removeDestination, validateDestination, type Destination } from '../forward/store';
import { connect, describeError } from '../forward/transport';
import { defaultCollectorDataDir } from '../server';

interface DbOptions {
  dataDir: string;
  db?: string;
}

function withDbOptions(command: Command): Command {
  return command
    .addOption(new Option('--data-dir <dir>', 'collector data directory').default(defaultCollectorDataDir()))
    .option('--db <url>', 'sqlite:PATH or postgres://… (default: sqlite:<data-dir>/collector.db)');
}

async function withDb<T>(opts: DbOptions, fn: (db: Awaited<ReturnType<typeof openCollectorDb>>) => Promise<T>): Promise<T> {
  const handle = await openCollectorDb(parseDbUrl(opts.db ?? `sqlite:${path.join(path.resolve(opts.dataDir), 'collector.db')}`));
  try {
    return await fn(handle);
  } finally {
    await handle.destroy();
  }
}

const cliActor = () => ({ username: `cli:${os.userInfo().username}`, role: 'admin' as const, address: os.hostname() });

function port(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new UsageError(`--port takes a whole number from 1 to 65535, not '${value}'`);
  return Number(value);
}

/** One line per destination: where it sends, what, and how it stands. */
export function describeDestination(d: Destination): string {
  const what = [d.sendEvents ? 'events' : '', d.sendAudit ? 'audit' : ''].filter(Boolean).join('+');
  const state = !d.enabled ? 'disabled' : d.lastError ? `ERROR ${d.lastError} (at ${d.lastErrorAt})` : d.lastSuccessAt ? 'ok' : 'not yet connected';
  const tls = d.transport === 'tls' ? ` ca=${d.caFile ?? 'system'} name=${d.serverName ?? d.host}` : '';
  return `${d.name}\t${d.transport}://${d.host}:${d.port}${tls}\t${d.format}\t${what}\t${state}\tlast worked: ${d.lastSuccessAt ?? 'never'}\tcursor: events ${d.eventCursor}, audit ${d.auditCursor}`;
}

/** Adds `mamori collector forward add|list|remove|test` (docs/design.md#forwarding-to-a-siem). */
export function registerForwardCommands(collector: Command): void {
  const forward = collector.command('forward').description('forwarding of terminal events and admin audit entries to a SIEM (syslog RFC 5424 / RFC 5425, CEF)');

  withDbOptions(
    forward
      .command('add <name>')
      .description('add a destination; it receives everything stored, from the first event on')
      .requiredOption('--host <host>', 'the SIEM host')
      .requiredOption('--port <port>', 'its port', port)
      .addOption(new Option('--transport <transport>', 'tcp or tls (RFC 5425)').choices([...TRANSPORTS]).default('tls'))
      .option('--ca-file <file>', 'tls: the CA certificate (PEM) the SIEM certificate must chain to (default: the system CAs)')
      .option('--server-name <name>', 'tls: the name the certificate must carry (default: --host)')
      .addOption(new Option('--format <format>', 'message format').choices([...FORMATS]).default('rfc5424'))
      .option('--no-events', 'do not send events received from terminals')
      .option('--no-audit', 'do not send admin audit entries')
      .option('--disabled', 'add it disabled'),
  ).action(async (name: string, opts: DbOptions & { host: string; port: number; transport: string; caFile?: string; serverName?: string; format: string; events: boolean; audit: boolean; disabled?: boolean }) => {
    const config = validateDestination({
      name,
      host: opts.host,
      port: opts.port,
      transport: opts.transport,
      caFile: opts.caFile === undefined ? undefined : path.resolve(opts.caFile),
      serverName: opts.serverName,
      format: opts.format,
      sendEvents: opts.events,
      sendAudit: opts.audit,
      enabled: !opts.disabled,
    });
    await withDb(opts, ({ db }) => addDestination(db, cliActor(), config, systemClock.now()));
    process.stdout.write(`added ${name}\n`);
  });

  withDbOptions(forward.command('list').description('list destinations with their state and when each last worked').option('--json', 'as JSON')).action(async (opts: DbOptions & { json?: boolean }) => {
    const list = await withDb(opts, ({ db }) => listDestinations(db));
    if (opts.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    else process.stdout.write(list.length === 0 ? 'no destinations\n' : `${list.map(describeDestination).join('\n')}\n`);
  });

  withDbOptions(forward.command('remove <name>').description('remove a destination')).action(async (name: string, opts: DbOptions) => {
    await withDb(opts, ({ db }) => removeDestination(db, cliActor(), name));
    process.stdout.write(`removed ${name}\n`);
  });

  withDbOptions(forward.command('test <name>').description('connect to a destination and send one test message')).action(async (name: string, opts: DbOptions) => {
    const dest = await withDb(opts, ({ db }) => getDestination(db, name));
    const now = systemClock.now().toISOString();
    const record: ForwardRecord = { kind: 'audit', at: now, host: os.hostname(), type: 'forward.test', severity: 'notice', fields: [['type', 'forward.test'], ['actor', cliActor().username]], message: '{"test":"Mamori 転送テスト"}' };
    let conn;
    try {
      conn = await connect(dest, DEFAULT_FORWARDING);
      await conn.write(renderBatch([record], dest.format));
    } catch (err) {
      throw new MamoriError('bad_request', `${name}: ${describeError(err)}`);
    } finally {
      conn?.close();
    }
    process.stdout.write(`sent a test message to ${name}\n`);
  });
}
