import type { Command } from 'commander';
import { createIpcClient } from '../../shared';
import { connectIpc } from '../ipc/socket';
import { defaultIpcPath } from '../ipc-path';
import { print, printJson } from './common';

/** `mamori agent status`: ask the running agent over IPC. */
export function registerStatusCommand(agent: Command): void {
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
}
