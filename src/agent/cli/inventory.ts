import path from 'node:path';
import type { Command } from 'commander';
import { createInventoryCollector } from '../inventory';
import { createLogger } from '../logger';
import { print, printJson, systemRootOption, type CommonOptions } from './common';

/** `mamori agent inventory`: collect and print this terminal's device inventory. */
export function registerInventoryCommand(agent: Command): void {
  agent
    .command('inventory')
    .description("collect and print this terminal's device inventory")
    .addOption(systemRootOption())
    .option('--json', 'print the snapshot as JSON')
    .action(async (opts: CommonOptions) => {
      const collector = createInventoryCollector({
        systemRoot: path.resolve(opts.systemRoot),
        logger: createLogger({ level: 'warn' }),
      });
      const snapshot = await collector.collect();
      if (opts.json) return printJson(snapshot);
      print(`hostname: ${snapshot.hostname}`);
      print(`os: ${[snapshot.os.distro, snapshot.os.release, snapshot.os.arch].filter(Boolean).join(' ')}`);
      print(`model: ${[snapshot.system.manufacturer, snapshot.system.model].filter(Boolean).join(' ')}`);
      print(`cpu: ${snapshot.cpu.brand}`);
      for (const n of snapshot.network.filter((i) => !i.internal)) {
        print(`network: ${n.iface} ${n.mac} ${[...n.ipv4, ...n.ipv6].join(' ')}`.trimEnd());
      }
      for (const d of snapshot.usb.filter((u) => !u.rootHub)) {
        const classes = d.interfaces.map((i) => i.interfaceClass).join(',');
        print(
          `usb: ${d.port} ${d.vendorId}:${d.productId} serial=${JSON.stringify(d.serial)} ${JSON.stringify(`${d.manufacturer} ${d.product}`.trim())} classes=${classes}`,
        );
      }
      for (const w of snapshot.warnings) print(`warning: ${w.section}: ${w.message}`);
    });
}
