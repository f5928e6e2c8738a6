import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { UsageError, createIpcClient, sanitizeText, type StoredEvent } from '../shared';
import { createInventoryCollector } from './inventory';
import { createLogger } from './logger';
import { enrollAgent } from './enroll';
import { allowPresentDevices, createEnforcer, releaseControls } from './enforcement';
import { createAgent } from './main';
import { execRunner } from './os/command';
import { loadEnrollment, loadPolicy } from './policy';
import { connectIpc, isLive } from './ipc/socket';
import { defaultAgentDataDir, defaultIpcPath, storeFile } from './paths';
import { PROVISION_FILE_NAME, appendInstallLog, provisionFromInstaller } from './provision';
import { openEventStore, type EventStore } from './store';
import { summariseEvent } from './summary';
import { syncEvents } from './sync';
import { createSyncClient } from './sync-client';
import { STATE_KEYS } from './state-keys';

interface CommonOptions {
  dataDir: string;
  systemRoot: string;
  json?: boolean;
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function parseSeq(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--since takes a whole number, not '${value}'`);
  return Number(value);
}

const dataDirOption = (): Option =>
  new Option('--data-dir <dir>', 'agent data directory').default(
    defaultAgentDataDir(),
    defaultAgentDataDir(),
  );
const systemRootOption = (): Option =>
  new Option('--system-root <dir>', 'root under which /sys, /etc and /var/log are read').default('/');

/** Adds `mamori agent …` to the program. */
export function registerAgentCommands(program: Command): void {
  const agent = program
    .command('agent')
    .description('the endpoint agent: enforcement, inventory, logins, local log, sync')
    .addHelpText(
      'after',
      `\nDefault data directory: ${defaultAgentDataDir()} (Linux /var/lib/mamori, Windows %ProgramData%\\Mamori, macOS /Library/Application Support/Mamori)`,
    );

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

  agent
    .command('enroll')
    .description('enroll this terminal with a collector (pins its public key)')
    .requiredOption('--collector <url>', 'collector URL, e.g. https://mamori.example.lg.jp:8765')
    .requiredOption('--token <token>', 'enrollment token from `mamori collector token create`')
    .addOption(dataDirOption())
    .addOption(systemRootOption())
    .option('--pubkey <base64>', "the collector's public key (`mamori collector key`, SPKI base64): enrollment fails when the collector presents another")
    .option('--allow-present', 'allow the removable media plugged in now (lockout safety)')
    .option('--json', 'print the enrollment as JSON')
    .action(async (opts: CommonOptions & { collector: string; token: string; pubkey?: string; allowPresent?: boolean }) => {
      const store = openEventStore(storeFile(path.resolve(opts.dataDir)));
      try {
        const systemRoot = path.resolve(opts.systemRoot);
        const e = await enrollAgent({ store, collectorUrl: opts.collector, token: opts.token, systemRoot, ...(opts.pubkey !== undefined ? { expectedPublicKey: opts.pubkey } : {}) });
        if (opts.allowPresent) {
          const allowed = await allowPresentDevices(store, createEnforcer({ platform: process.platform, systemRoot }));
          if (!opts.json) for (const a of allowed) print(`allowed: ${a.vendorId}:${a.productId}${a.serial ? ` serial ${JSON.stringify(a.serial)}` : ' (any serial)'}`);
        }
        const policy = loadPolicy(store);
        if (opts.json) return printJson({ agentId: e.agentId, segment: e.segment, collectorUrl: e.collectorUrl, policyVersion: policy?.version ?? null });
        print(`enrolled as ${e.agentId} in segment ${e.segment} (policy v${policy?.version ?? '?'}, mode ${policy?.removableMedia.mode ?? '?'})`);
      } finally {
        store.close();
      }
    });

  agent
    .command('provision [installerArgs...]')
    .description('validate and store the installer provision (collector URL, token, segment) for the service to enroll with; an enrolled terminal keeps its enrollment')
    .addOption(dataDirOption())
    .option('--file <file>', 'a mamori-provision.json')
    .option('--beside <path>', `the installer (or its folder): a ${PROVISION_FILE_NAME} beside it is read when present`)
    .option('--log <file>', 'also append the outcome to this file (installers pass <data-dir>/install.log)')
    .addHelpText('after', '\nInstaller arguments: NSIS style /COLLECTOR=URL /TOKEN=T /SEGMENT=S [/PUBKEY=K] or MSI style COLLECTOR=URL …; they win over the file. Put -- before them when they may contain other switches.')
    .action((installerArgs: string[], opts: CommonOptions & { file?: string; beside?: string; log?: string }) => {
      const dataDir = path.resolve(opts.dataDir);
      try {
        const result = provisionFromInstaller({ dataDir, args: installerArgs, ...(opts.file ? { file: opts.file } : {}), ...(opts.beside ? { beside: opts.beside } : {}) });
        if (opts.log) appendInstallLog(opts.log, `agent provision: ${result.message}`);
        print(result.message);
      } catch (err) {
        if (opts.log) appendInstallLog(opts.log, `agent provision failed: ${(err as Error).message}`);
        throw err;
      }
    });

  agent
    .command('release')
    .description('give the OS its removable-media controls back, for an uninstall (stop the service first)')
    .addOption(dataDirOption())
    .addOption(systemRootOption())
    .option('--ipc <path>', 'IPC socket or pipe of the agent, to check that it is stopped', defaultIpcPath())
    .option('--log <file>', 'also append the outcome to this file')
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions & { ipc: string; log?: string }) => {
      const log = (line: string) => opts.log && appendInstallLog(opts.log, `agent release: ${line}`);
      // A running agent would put every control back at its next pass.
      if (await isLive(opts.ipc)) {
        const message = 'エージェントのサービスが動作中です。先に停止してください / the agent service is still running: stop it first (systemctl stop mamori-agent, sc stop MamoriAgent, launchctl bootout system/jp.mamori.agent)';
        log(message);
        throw new Error(message);
      }
      const dataDir = path.resolve(opts.dataDir);
      const systemRoot = path.resolve(opts.systemRoot);
      let store: EventStore | null = null;
      try {
        if (fs.existsSync(storeFile(dataDir))) store = openEventStore(storeFile(dataDir));
      } catch (err) {
        // A damaged store must not keep the OS controls from being given back: release without
        // what the agent remembered (read-only flags it set stay; everything else is undone).
        log(`local log unreadable, releasing without it: ${(err as Error).message}`);
      }
      try {
        const enforcer = createEnforcer({
          platform: process.platform,
          systemRoot,
          // What the agent set on this boot, so read-only flags it put on are taken off too.
          ...(store ? { memory: { load: () => store.getState(STATE_KEYS.enforcementSet), save: (json: string) => store.setState(STATE_KEYS.enforcementSet, json) } } : {}),
        });
        const result = await releaseControls({ enforcer, platform: process.platform, runner: execRunner });
        const summary = result.failures.length === 0 ? 'removable-media controls given back to the OS' : `could not restore: ${result.failures.join('; ')}`;
        if (store) {
          store.append({ type: 'agent.stopped', payload: { reason: sanitizeText(`released (uninstall): ${summary}`, 500) } });
          // Best effort, bounded: the collector learns the terminal was uninstalled; the event
          // stays in the local log otherwise.
          const enrollment = loadEnrollment(store);
          if (enrollment) {
            const api = createSyncClient({ baseUrl: enrollment.collectorUrl, agentId: enrollment.agentId, agentToken: enrollment.agentToken, timeoutMs: 5_000, head: () => store.head() });
            await syncEvents(store, api).catch(() => undefined);
          }
        }
        log(summary);
        if (opts.json) printJson(result);
        else {
          print(result.failures.length === 0 ? 'OS の外部記録媒体の制御を元に戻しました / released: removable-media controls given back to the OS' : `一部を元に戻せませんでした / not all controls could be restored: ${result.failures.join('; ')}`);
          for (const id of result.reEnabled) print(`re-enabled: ${id}`);
        }
        if (result.failures.length > 0) process.exitCode = 1;
      } finally {
        store?.close();
      }
    });

  agent
    .command('run')
    .description('run the agent service (one full cycle with --once)')
    .addOption(dataDirOption())
    .addOption(systemRootOption())
    .option('--ipc <path>', 'IPC socket or pipe to listen on')
    .option('--once', 'run one cycle, then exit')
    .action(async (opts: CommonOptions & { once?: boolean; ipc?: string }) => {
      const agentProcess = createAgent({
        dataDir: path.resolve(opts.dataDir),
        systemRoot: path.resolve(opts.systemRoot),
        ipcPath: opts.ipc,
        logger: createLogger(),
      });
      if (opts.once) {
        const result = await agentProcess.runOnce();
        if (result.enrolled && !result.collectorReachable) {
          process.stderr.write('mamori: collector unreachable; events stay in the local log until the next sync\n');
        }
        return;
      }
      await agentProcess.runForever();
    });

  agent
    .command('status')
    .description('ask the running agent for its status over IPC')
    .option('--ipc <path>', 'IPC socket or pipe of the agent', defaultIpcPath())
    .option('--json', 'print the status as JSON')
    .action(async (opts: { ipc: string; json?: boolean }) => {
      const client = createIpcClient(await connectIpc(opts.ipc));
      try {
        const s = await client.status(undefined);
        if (opts.json) return printJson(s);
        print(`agent: ${s.agentId ?? 'not enrolled'} on ${s.hostname}`);
        print(`segment: ${s.segment ?? '-'}   policy: v${s.policyVersion ?? '-'}   enforcement: ${s.enforcement}`);
        print(`collector: ${s.collectorReachable ? 'reachable' : 'unreachable'}   last sync: ${s.lastSyncAt ?? 'never'}   pending events: ${s.pendingEvents}`);
        if (s.incidentContact) print(`incident contact: ${s.incidentContact}`);
      } finally {
        client.close();
      }
    });

  agent
    .command('events')
    .description('list the events in the local log')
    .addOption(dataDirOption())
    .option('--since <seq>', 'only events after this seq', parseSeq, 0)
    .option('--json', 'print the events as JSON')
    .action((opts: CommonOptions & { since: number }) => {
      const store = openEventStore(storeFile(path.resolve(opts.dataDir)), { readonly: true });
      try {
        const events: StoredEvent[] = [];
        let after = opts.since;
        for (;;) {
          const page = store.readSince(after, 1000);
          if (page.length === 0) break;
          events.push(...page);
          after = page[page.length - 1]!.seq;
        }
        if (opts.json) return printJson(events);
        for (const e of events) print(`${e.seq}\t${e.at}\t${e.type}\t${summariseEvent(e)}`);
      } finally {
        store.close();
      }
    });

  agent
    .command('verify-log')
    .description('check the hash chain of the local log (exit 0 intact, 1 broken)')
    .addOption(dataDirOption())
    .option('--json', 'print the result as JSON')
    .action((opts: CommonOptions) => {
      const store = openEventStore(storeFile(path.resolve(opts.dataDir)), { readonly: true });
      try {
        const broken = store.verify();
        const { seq } = store.head();
        if (opts.json) printJson({ intact: !broken, events: seq, firstBadSeq: broken?.seq ?? null, reason: broken?.reason ?? null });
        else if (broken) print(`log integrity: broken at seq ${broken.seq} (${broken.reason})`);
        else print(`log integrity: intact (${seq} events)`);
        if (broken) process.exitCode = 1;
      } finally {
        store.close();
      }
    });
}
