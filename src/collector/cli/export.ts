import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { SEGMENTS, UsageError } from '../../shared';

/** `mamori export inventory`: download the ledger from a collector. */
export function registerExportCommands(program: Command): void {
  program
    .command('export')
    .description('exports from a collector (admin API token in MAMORI_ADMIN_TOKEN)')
    .command('inventory')
    .description('download the terminal ledger (端末台帳)')
    .requiredOption('--collector <url>', 'collector URL')
    .addOption(new Option('--format <format>', 'csv, xlsx or json').choices(['csv', 'xlsx', 'json']).makeOptionMandatory())
    .addOption(new Option('--segment <segment>', 'only one segment').choices([...SEGMENTS]))
    .addOption(new Option('--lang <lang>', 'header language').choices(['ja', 'en']).default('ja'))
    .requiredOption('-o, --output <file>', 'file to write')
    .action(async (opts: { collector: string; format: string; segment?: string; lang: string; output: string }) => {
      const tokenValue = process.env.MAMORI_ADMIN_TOKEN;
      if (!tokenValue) throw new UsageError('set MAMORI_ADMIN_TOKEN to an admin or auditor API token');
      let base: URL;
      try {
        base = new URL('/api/v1/admin/inventory/export', opts.collector);
      } catch {
        throw new UsageError(`--collector is not a URL: ${opts.collector}`);
      }
      base.searchParams.set('format', opts.format);
      base.searchParams.set('lang', opts.lang);
      if (opts.segment) base.searchParams.set('segment', opts.segment);
      let res: Response;
      try {
        res = await fetch(base, { headers: { authorization: `Bearer ${tokenValue}` } });
      } catch (err) {
        throw new Error(`cannot reach ${base.origin}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`);
      }
      const body = Buffer.from(await res.arrayBuffer());
      if (!res.ok) {
        let message = `HTTP ${res.status}`;
        try {
          message = (JSON.parse(body.toString('utf8')) as { error: { message: string } }).error.message;
        } catch {
          // not the error body: keep the status
        }
        throw new Error(`export refused: ${message}`);
      }
      fs.writeFileSync(opts.output, body);
      process.stderr.write(`wrote ${body.length} bytes to ${opts.output}\n`);
    });
}
