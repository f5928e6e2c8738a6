import { BRIDGE_METHODS, IPC_METHODS, bridgeChannel, type AgentService, type BridgeResult, type IpcMethod } from '../shared';
import { isTrustedSender } from './tray-model';

/** The parts of Electron's ipcMain and its events that the handlers use. */
export interface IpcMainLike {
  handle(
    channel: string,
    listener: (event: { sender: { id: number }; senderFrame: { url: string; parent: unknown } | null }, params: unknown) => Promise<BridgeResult>,
  ): void;
}

/**
 * Serves `window.mamori` for the tray's windows: each call is checked to come from one of their
 * main frames, validated against the IPC contract, and forwarded to the agent. Errors come back
 * as data, since Electron's invoke() keeps only an error's message.
 */
export function registerBridgeHandlers(
  ipcMain: IpcMainLike,
  deps: { agent: () => AgentService | null; windowIds: () => ReadonlySet<number>; locale: () => 'ja' | 'en' },
): void {
  const guard = (event: Parameters<Parameters<IpcMainLike['handle']>[1]>[0]): BridgeResult | null => {
    const frame = event.senderFrame ? { url: event.senderFrame.url, isMainFrame: event.senderFrame.parent === null } : null;
    return isTrustedSender(frame, deps.windowIds(), event.sender.id)
      ? null
      : { ok: false, error: { code: 'forbidden', message: 'not one of the tray windows' } };
  };
  ipcMain.handle(bridgeChannel('locale'), async (event) => guard(event) ?? { ok: true, value: deps.locale() });
  for (const method of BRIDGE_METHODS) {
    ipcMain.handle(bridgeChannel(method), async (event, params) => {
      const refused = guard(event);
      if (refused) return refused;
      const parsed = IPC_METHODS[method as IpcMethod].params.safeParse(params ?? undefined);
      if (!parsed.success) return { ok: false, error: { code: 'invalid_params', message: parsed.error.issues[0]?.message ?? 'invalid' } };
      const agent = deps.agent();
      if (!agent) return { ok: false, error: { code: 'agent_unreachable', message: 'the Mamori agent is not reachable' } };
      try {
        return { ok: true, value: await (agent[method] as (p: unknown) => Promise<unknown>)(parsed.data) };
      } catch (err) {
        return { ok: false, error: { code: (err as { code?: string }).code ?? 'internal', message: (err as Error).message } };
      }
    });
  }
}
