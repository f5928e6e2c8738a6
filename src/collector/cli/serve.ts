import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../shared';
import { createCollector, createCollectorLogger, isLoopback, parseListen, readTls } from '../server';
import { dbOptions, dbUrl, keyFile, keyFileOption, type DbOptions } from './common';

/** `mamori collector serve`: the API and the console until SIGINT or SIGTERM. */
export function registerServeCommand(collector: Command): void {
  keyFileOption(dbOptions(
    collector
      .command('serve')
      .description('serve the collector API (and console) until SIGINT or SIGTERM')
      .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8765')
      .option('--tls-cert <file>', 'TLS certificate (PEM)')
      .option('--tls-key <file>', 'TLS private key (PEM)')
      .option('--insecure-http', 'allow plain HTTP on a non-loopback address'),
  )).action(async (opts: DbOptions & { listen: string; tlsCert?: string; tlsKey?: string; insecureHttp?: boolean }) => {
    const { host, port } = parseListen(opts.listen);
    if (!!opts.tlsCert !== !!opts.tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
    const https = opts.tlsCert && opts.tlsKey ? readTls(opts.tlsCert, opts.tlsKey) : undefined;
    if (!https && !isLoopback(host) && !opts.insecureHttp) {
      throw new UsageError(`refusing plain HTTP on ${host}: give --tls-cert and --tls-key, or --insecure-http`);
    }
    if (!opts.db) fs.mkdirSync(path.resolve(opts.dataDir), { recursive: true, mode: 0o700 });
    const logger = createCollectorLogger();
    const instance = await createCollector({ db: dbUrl(opts), logger, https, keyFile: keyFile(opts) });
    const url = await instance.listen({ host, port });
    process.stdout.write(`listening on ${url}\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'stopping');
        void instance.stop().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
  });
}
