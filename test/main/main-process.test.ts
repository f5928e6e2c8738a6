import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createExceptionBook } from '../../src/agent/exceptions';
import { createAgentService } from '../../src/agent/ipc/service';
import { startIpcServer, type IpcServer } from '../../src/agent/ipc/socket';
import { silentLogger } from '../../src/agent/logger';
import { saveEnrollment } from '../../src/agent/policy';
import { openEventStore, type EventStore } from '../../src/agent/store';

/** A stand-in for the parts of Electron main uses, recording what main does with them. */
const fake = vi.hoisted(() => {
  const record = {
    menus: [] as { label?: string; type?: string; click?: () => void }[][],
    images: [] as string[],
    notifications: [] as { title: string; body: string; shown: boolean; handlers: Record<string, () => void> }[],
    windows: [] as { options: { webPreferences: Record<string, unknown> }; url: string }[],
    power: {} as Record<string, () => void>,
    handlers: new Map<string, unknown>(),
  };
  let ready: () => void = () => undefined;
  const whenReady = new Promise<void>((r) => (ready = r));
  class Tray {
    constructor(image: { path: string }) {
      record.images.push(image.path);
    }
    setImage(image: { path: string }) {
      record.images.push(image.path);
    }
    setToolTip() {}
    setContextMenu() {}
  }
  class BrowserWindow {
    webContents = { id: record.windows.length + 1, on: () => undefined, setWindowOpenHandler: () => undefined };
    entry: { options: { webPreferences: Record<string, unknown> }; url: string };
    constructor(options: { webPreferences: Record<string, unknown> }) {
      this.entry = { options, url: '' };
      record.windows.push(this.entry);
    }
    loadURL(url: string) {
      this.entry.url = url;
      return Promise.resolve();
    }
    isDestroyed() {
      return false;
    }
    focus() {}
  }
  class Notification {
    entry: { title: string; body: string; shown: boolean; handlers: Record<string, () => void> };
    constructor(o: { title: string; body: string }) {
      this.entry = { title: o.title, body: o.body, shown: false, handlers: {} };
      record.notifications.push(this.entry);
    }
    on(event: string, cb: () => void) {
      this.entry.handlers[event] = cb;
    }
    show() {
      this.entry.shown = true;
    }
  }
  const electron = {
    app: { requestSingleInstanceLock: () => true, quit: vi.fn(), on: () => undefined, whenReady: () => whenReady, getLocale: () => 'ja-JP' },
    protocol: { registerSchemesAsPrivileged: () => undefined, handle: () => undefined },
    ipcMain: { handle: (channel: string, fn: unknown) => void record.handlers.set(channel, fn) },
    Menu: { buildFromTemplate: (t: { label?: string }[]) => (record.menus.push(t), t) },
    nativeImage: { createFromPath: (p: string) => ({ path: p }) },
    net: { fetch: () => undefined },
    powerMonitor: { on: (e: string, cb: () => void) => void (record.power[e] = cb) },
    Tray,
    BrowserWindow,
    Notification,
  };
  return { record, electron, ready: () => ready() };
});
vi.mock('electron', () => fake.electron);

let dir: string;
let store: EventStore;
let server: IpcServer;
const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mamori-main-'));
  store = openEventStore(path.join(dir, 'agent.db'));
  saveEnrollment(store, {
    collectorUrl: 'http://127.0.0.1:1',
    agentId: 'a1',
    agentToken: 't',
    segment: 'mynumber',
    collectorPublicKey: 'k',
    unlockSecret: 's',
    enrolledAt: '2026-11-24T00:00:00.000Z',
  });
  store.setState(
    'policy.current',
    JSON.stringify({
      segment: 'mynumber',
      version: 3,
      issuedAt: '2026-11-24T00:00:00.000Z',
      signature: 's',
      syncIntervalSeconds: 300,
      incidentContact: 'CSIRT',
      removableMedia: { mode: 'block', allow: [] },
    }),
  );
  store.setState('sync.last_at', new Date().toISOString());
  const service = createAgentService({
    store,
    exceptions: createExceptionBook(store),
    enforcement: () => 'active',
    collectorReachable: () => true,
    syncSoon: () => undefined,
    reconcileNow: () => undefined,
    sessions: { consoleUser: async () => ({ key: `uid:${process.getuid!()}`, user: 'me' }) },
  });
  server = await startIpcServer({ path: path.join(dir, 'agent.sock'), service, logger: silentLogger });
  process.env.MAMORI_IPC = path.join(dir, 'agent.sock');
  vi.useFakeTimers({ toFake: ['setInterval'] });
  await import('../../src/main/main');
  fake.ready();
});
afterAll(async () => {
  vi.useRealTimers();
  await server.stop();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const labels = () => (fake.record.menus.at(-1) ?? []).map((i) => i.label ?? '-');

describe('Electron main with a mocked electron module', () => {
  it('builds the Japanese menu from the agent status and shows the protected icon', async () => {
    await until(() => labels().includes('マイナンバー利用事務系・ポリシー v3'), 'the menu with the agent status');
    expect(labels()).toEqual([
      'ポリシー適用中',
      'マイナンバー利用事務系・ポリシー v3',
      '-',
      'インシデントを報告…',
      'USBメモリの利用申請…',
      '端末情報',
      '-',
      '終了',
    ]);
    expect(fake.record.images.at(-1)).toMatch(/tray-protected\.png$/);
    expect([...fake.record.handlers.keys()]).toContain('mamori:reportIncident');
  });

  it('notifies a block with a request action and turns the icon to alert', async () => {
    store.append({
      type: 'device.blocked',
      payload: { vendorId: '0781', productId: '5581', serial: 'S1', manufacturer: 'SanDisk', product: 'Ultra', deviceClass: '00', port: '1-2' },
    });
    vi.advanceTimersByTime(10_000);
    await until(() => fake.record.notifications.length > 0, 'a notification');
    const note = fake.record.notifications[0]!;
    expect(note).toMatchObject({ title: 'ブロックしました', shown: true });
    expect(note.body).toContain('SanDisk Ultra');
    await until(() => /tray-alert\.png$/.test(fake.record.images.at(-1) ?? ''), 'the alert icon');
    note.handlers.action!();
    expect(fake.record.windows.at(-1)!.url).toBe('mamori-app://app/dist/web/renderer/exception.html');
  });

  it('opens the incident window locked down from the menu', () => {
    fake.record.menus.at(-1)!.find((i) => i.label === 'インシデントを報告…')!.click!();
    const win = fake.record.windows.at(-1)!;
    expect(win.url).toBe('mamori-app://app/dist/web/renderer/incident.html');
    expect(win.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false });
  });

  it('forwards a screen lock to the agent', async () => {
    fake.record.power['lock-screen']!();
    await until(() => store.recent(1)[0]?.type === 'session.lock', 'session.lock in the agent log');
  });
});
