import type { AgentService } from './ipc';

/**
 * `window.mamori`: what the tray's windows may ask of the agent, through Electron main. A strict
 * subset of the IPC contract (no `sessionEvent`: only main reports locks), plus the UI language.
 * The preload exposes exactly these names; the renderer's type is this one.
 */
export const BRIDGE_METHODS = ['status', 'recentEvents', 'reportIncident', 'requestException', 'redeemUnlockCode'] as const;
export type BridgeMethod = (typeof BRIDGE_METHODS)[number];

export type MamoriBridge = { [M in BridgeMethod]: AgentService[M] } & {
  /** The UI language main chose from the OS locale. */
  locale(): Promise<'ja' | 'en'>;
};

/** The Electron IPC channel of a bridge method. */
export const bridgeChannel = (method: BridgeMethod | 'locale'): string => `mamori:${method}`;

/** What main answers on a bridge channel: Electron's invoke() would keep only an error's message. */
export type BridgeResult = { ok: true; value: unknown } | { ok: false; error: { code: string; message: string } };

/**
 * Builds `window.mamori` over an invoke function (the preload passes ipcRenderer.invoke). Errors
 * come back as `Error` whose message starts with the stable code, `unlock_refused: …`, because
 * only the message survives Electron's context bridge. Self-contained on purpose: tests inject
 * its source into a page to provide the same object.
 */
export function createBridge(invoke: (channel: string, params?: unknown) => Promise<unknown>): MamoriBridge {
  const call = async (method: string, params?: unknown): Promise<never> => {
    const result = (await invoke(`mamori:${method}`, params)) as BridgeResult | undefined;
    if (result && result.ok) return result.value as never;
    const error = result && !result.ok ? result.error : { code: 'internal', message: 'no answer' };
    throw new Error(`${error.code}: ${error.message}`);
  };
  return {
    status: (p?: unknown) => call('status', p),
    recentEvents: (p?: unknown) => call('recentEvents', p),
    reportIncident: (p: unknown) => call('reportIncident', p),
    requestException: (p: unknown) => call('requestException', p),
    redeemUnlockCode: (p: unknown) => call('redeemUnlockCode', p),
    locale: () => call('locale'),
  } as MamoriBridge;
}

/** The stable code at the start of a bridge error's message, or `internal`. */
export function bridgeErrorCode(err: unknown): string {
  const match = /^([a-z_]+): /.exec((err as Error | undefined)?.message ?? '');
  return match ? match[1]! : 'internal';
}
