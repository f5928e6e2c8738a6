import type { IpcResult, StoredEvent } from '../shared';
import { mainText, type MainLang } from './messages';

export type TrayState = 'protected' | 'alert' | 'degraded' | 'offline';
type Status = IpcResult<'status'>;

/** An alert stays on the icon this long after a block. */
export const ALERT_MS = 5 * 60_000;
/** The collector has not acknowledged for this long: the terminal shows offline. */
export const OFFLINE_MS = 24 * 3600_000;

/**
 * The tray icon's state: degraded when the agent cannot be reached or its enforcement is
 * degraded, offline when the collector has not answered for 24 h, alert for a while after a
 * block, protected otherwise.
 */
export function trayState(status: Status | null, lastBlockedAt: number | null, now: number): TrayState {
  if (!status || status.enforcement === 'degraded' || status.enforcement === 'off' || status.enforcement === 'unknown') return 'degraded';
  if (lastBlockedAt !== null && now - lastBlockedAt < ALERT_MS) return 'alert';
  const lastSync = status.lastSyncAt ? Date.parse(status.lastSyncAt) : null;
  if (status.agentId && (lastSync === null || now - lastSync > OFFLINE_MS)) return 'offline';
  return 'protected';
}

/** What a menu item does; main maps each to a window or to quitting. */
export type MenuAction = 'report' | 'request' | 'info' | 'quit';
export interface MenuItemModel {
  label: string;
  enabled: boolean;
  action?: MenuAction;
  separator?: boolean;
}

/** The tray menu for a state, in the UI language. */
export function menuModel(lang: MainLang, state: TrayState, status: Status | null): MenuItemModel[] {
  const statusLine = status?.segment
    ? mainText(lang, 'menu.status', { segment: mainText(lang, `segment.${status.segment}`), version: String(status.policyVersion ?? '-') })
    : mainText(lang, 'tray.unreachable');
  // Why the terminal is degraded, one line per reason, so staff can tell IT what they see.
  const reasons = state === 'degraded' && status ? status.degradedReasons.map((r) => ({ label: mainText(lang, `reason.${r}`), enabled: false })) : [];
  return [
    { label: mainText(lang, `tray.${state}`), enabled: false },
    ...reasons,
    { label: statusLine, enabled: false },
    { label: '', enabled: false, separator: true },
    { label: mainText(lang, 'menu.report'), enabled: true, action: 'report' },
    { label: mainText(lang, 'menu.request'), enabled: true, action: 'request' },
    { label: mainText(lang, 'menu.info'), enabled: true, action: 'info' },
    { label: '', enabled: false, separator: true },
    { label: mainText(lang, 'menu.quit'), enabled: true, action: 'quit' },
  ];
}

/** The `device.blocked` events newer than `afterSeq`, oldest first: one notification each. */
export function newBlocks(
  events: Pick<StoredEvent, 'seq' | 'at' | 'type' | 'payload'>[],
  afterSeq: number,
): Pick<StoredEvent, 'seq' | 'at' | 'type' | 'payload'>[] {
  return events.filter((e) => e.type === 'device.blocked' && e.seq > afterSeq).sort((a, b) => a.seq - b.seq);
}

/** A device's name for a notification, with control characters removed. */
export function deviceName(payload: unknown): string {
  const p = (payload ?? {}) as Record<string, unknown>;
  const name = [p.manufacturer, p.product]
    .filter((x) => typeof x === 'string' && x)
    .join(' ')
    .replace(/[\u0000-\u001f\u007f]/g, '');
  return (name || `${String(p.vendorId ?? '????')}:${String(p.productId ?? '????')}`).slice(0, 80);
}

/**
 * IPC is accepted only from the main frame of one of the tray's own windows, loaded from the
 * app's own scheme (VS Code's validateIPC does the same).
 */
export function isTrustedSender(frame: { url: string; isMainFrame: boolean } | null, ownWebContentsIds: ReadonlySet<number>, senderId: number): boolean {
  if (!frame || !frame.isMainFrame || !ownWebContentsIds.has(senderId)) return false;
  try {
    const url = new URL(frame.url);
    return url.protocol === 'mamori-app:' && url.host === 'app';
  } catch {
    return false;
  }
}
