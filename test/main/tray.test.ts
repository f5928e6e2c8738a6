import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerBridgeHandlers, type IpcMainLike } from '../../src/main/bridge-handlers';
import { langFromLocale } from '../../src/main/messages';
import { ALERT_MS, OFFLINE_MS, deviceName, menuModel, newBlocks, trayState } from '../../src/main/tray-model';
import { BRIDGE_METHODS, type AgentService, type BridgeResult, type IpcResult } from '../../src/shared';

const now = Date.parse('2026-11-24T09:00:00Z');
const status = (over: Partial<IpcResult<'status'>> = {}): IpcResult<'status'> => ({
  agentId: 'a1',
  hostname: 'pc-001',
  segment: 'mynumber',
  policyVersion: 4,
  enforcement: 'active',
  lastSyncAt: new Date(now - 60_000).toISOString(),
  collectorReachable: true,
  pendingEvents: 0,
  incidentContact: 'CSIRT',
  ...over,
});

describe('tray state and menu', () => {
  it('goes protected, alert after a block, degraded without the agent, offline after 24 h', () => {
    expect(trayState(status(), null, now)).toBe('protected');
    expect(trayState(status(), now - 1000, now)).toBe('alert');
    expect(trayState(status(), now - ALERT_MS - 1, now)).toBe('protected');
    expect(trayState(null, null, now)).toBe('degraded');
    expect(trayState(status({ enforcement: 'degraded' }), null, now)).toBe('degraded');
    expect(trayState(status({ lastSyncAt: new Date(now - OFFLINE_MS - 1).toISOString() }), null, now)).toBe('offline');
  });

  it('builds the menu of the issue, in Japanese and English', () => {
    const ja = menuModel('ja', 'protected', status());
    expect(ja.filter((i) => !i.separator).map((i) => i.label)).toEqual([
      'ポリシー適用中',
      'マイナンバー利用事務系・ポリシー v4',
      'インシデントを報告…',
      'USBメモリの利用申請…',
      '端末情報',
      '終了',
    ]);
    expect(ja.filter((i) => i.action).map((i) => i.action)).toEqual(['report', 'request', 'info', 'quit']);
    expect(menuModel('en', 'degraded', null)[1]!.label).toBe('Cannot reach the agent');
    expect(langFromLocale('ja-JP')).toBe('ja');
    expect(langFromLocale('en-US')).toBe('en');
  });

  it('says in the menu why the terminal is degraded (the status knew, the tray never said)', () => {
    const degraded = status({ enforcement: 'degraded', degradedReasons: ['device_notices_unavailable', 'controls_not_applied'] });
    const ja = menuModel('ja', 'degraded', degraded).map((i) => i.label);
    expect(ja.slice(0, 3)).toEqual([
      '保護機能が一部停止しています',
      'USB 機器の接続通知を受け取れません（30 秒ごとの確認で対処します）',
      'OS の制御を設定できませんでした',
    ]);
    expect(menuModel('en', 'degraded', degraded)[2]!.label).toBe('An OS control could not be set');
    expect(
      menuModel('ja', 'protected', status())
        .map((i) => i.label)
        .some((l) => l.startsWith('USB 機器の')),
    ).toBe(false);
  });

  it('notifies each new block once and names the device without control characters', () => {
    const events = [
      {
        seq: 5,
        at: '',
        type: 'device.blocked' as const,
        payload: { manufacturer: 'SanDisk', product: 'Ultra\u001b[31m', vendorId: '0781', productId: '5581' },
      },
      { seq: 6, at: '', type: 'device.attached' as const, payload: {} },
      { seq: 7, at: '', type: 'device.blocked' as const, payload: { vendorId: '090c', productId: '1000' } },
    ];
    expect(newBlocks(events, 5).map((e) => e.seq)).toEqual([7]);
    expect(deviceName(events[0]!.payload)).toBe('SanDisk Ultra[31m');
    expect(deviceName(events[2]!.payload)).toBe('090c:1000');
  });
});

describe('IPC from the windows to main', () => {
  function setUp(agent: Partial<AgentService>) {
    const handlers = new Map<string, Parameters<IpcMainLike['handle']>[1]>();
    registerBridgeHandlers(
      { handle: (c, l) => void handlers.set(c, l) },
      { agent: () => agent as AgentService, windowIds: () => new Set([7]), locale: () => 'ja' },
    );
    const call = (channel: string, params: unknown, sender = 7, url = 'mamori-app://app/dist/web/renderer/incident.html', parent: unknown = null) =>
      handlers.get(channel)!({ sender: { id: sender }, senderFrame: { url, parent } }, params) as Promise<BridgeResult>;
    return { handlers, call };
  }

  it('handles exactly the bridge methods and the locale', () => {
    const { handlers } = setUp({});
    expect([...handlers.keys()].sort()).toEqual([...BRIDGE_METHODS.map((m) => `mamori:${m}`), 'mamori:locale'].sort());
  });

  it('accepts its own windows’ main frames and refuses other windows, subframes and other origins', async () => {
    const { call } = setUp({ status: async () => status() });
    expect(await call('mamori:status', undefined)).toMatchObject({ ok: true });
    expect(await call('mamori:status', undefined, 8)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await call('mamori:status', undefined, 7, 'mamori-app://app/x.html', {})).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await call('mamori:status', undefined, 7, 'https://evil.example/')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await call('mamori:locale', undefined)).toEqual({ ok: true, value: 'ja' });
  });

  it('validates params against the contract and keeps error codes', async () => {
    const { call } = setUp({ reportIncident: async () => Promise.reject(Object.assign(new Error('slow down'), { code: 'rate_limited' })) });
    expect(await call('mamori:reportIncident', { category: 'virus', description: 'x' })).toMatchObject({ ok: false, error: { code: 'invalid_params' } });
    expect(await call('mamori:reportIncident', { category: 'malware', description: 'x' })).toEqual({
      ok: false,
      error: { code: 'rate_limited', message: 'slow down' },
    });
  });
});

describe('the preload', () => {
  it('exposes window.mamori with the named bridge functions only, and needs nothing but electron', () => {
    const exposed: Record<string, unknown> = {};
    const invoked: [string, unknown][] = [];
    const fakeElectron = {
      contextBridge: { exposeInMainWorld: (name: string, api: unknown) => void (exposed[name] = api) },
      ipcRenderer: { invoke: async (c: string, p: unknown) => (invoked.push([c, p]), { ok: true, value: 'v' }) },
    };
    const file = path.resolve(__dirname, '../../dist/preload/preload.js');
    const requireFn = (id: string) => {
      if (id !== 'electron') throw new Error(`a sandboxed preload cannot require ${id}`);
      return fakeElectron;
    };
    const mod = new Module(file);
    (mod as unknown as { require: typeof requireFn }).require = requireFn;
    (mod as unknown as { _compile(src: string, f: string): void })._compile(fs.readFileSync(file, 'utf8'), file);
    const api = exposed.mamori as Record<string, (p?: unknown) => Promise<unknown>>;
    expect(Object.keys(api).sort()).toEqual([...BRIDGE_METHODS, 'locale'].sort());
    return api.status!().then((v) => {
      expect(v).toBe('v');
      expect(invoked).toEqual([['mamori:status', undefined]]);
    });
  });
});
