import net from 'node:net';
import path from 'node:path';
import { app, BrowserWindow, ipcMain, Menu, nativeImage, net as electronNet, Notification, powerMonitor, protocol, Tray } from 'electron';
import { createIpcClient, defaultIpcPathFor, streamLineTransport, type AgentService, type IpcResult } from '../shared';
import { registerBridgeHandlers } from './bridge-handlers';
import { deviceName, menuModel, newBlocks, trayState, type MenuAction, type TrayState } from './tray-model';
import { langFromLocale, mainText, type MainLang } from './messages';

/**
 * The tray: the composition root of Electron main. It shows and asks; it never enforces. It
 * talks to the agent over the IPC socket or pipe as the logged-in user.
 */
const APP_ROOT = path.join(__dirname, '..', '..');
const IPC_PATH = process.env.MAMORI_IPC ?? defaultIpcPathFor(process.platform);
const PAGES: Record<Exclude<MenuAction, 'quit'>, string> = { report: 'incident.html', request: 'exception.html', info: 'status.html' };

protocol.registerSchemesAsPrivileged([{ scheme: 'mamori-app', privileges: { standard: true, secure: true, supportFetchAPI: false } }]);

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  let lang: MainLang = 'ja';
  let tray: Tray | null = null;
  let agent: (AgentService & { close(): void }) | null = null;
  let status: IpcResult<'status'> | null = null;
  let lastBlockedAt: number | null = null;
  let lastSeq = -1;
  const windows = new Map<string, BrowserWindow>();

  const icon = (state: TrayState) =>
    nativeImage.createFromPath(
      path.join(
        APP_ROOT,
        'assets',
        process.platform === 'darwin' ? 'trayTemplate.png' : process.platform === 'win32' ? `tray-${state}.ico` : `tray-${state}.png`,
      ),
    );

  function openWindow(page: string): void {
    const existing = windows.get(page);
    if (existing && !existing.isDestroyed()) return existing.focus();
    const win = new BrowserWindow({
      width: 640,
      height: 760,
      title: 'Mamori',
      icon: path.join(APP_ROOT, 'assets', 'icon.png'),
      autoHideMenuBar: true,
      webPreferences: {
        preload: path.join(__dirname, '..', 'preload', 'preload.js'),
        contextIsolation: true,
        sandbox: true,
        nodeIntegration: false,
        webSecurity: true,
      },
    });
    // Nothing leaves the app's own pages: no navigation, no new windows.
    win.webContents.on('will-navigate', (e, url) => {
      if (!url.startsWith('mamori-app://app/')) e.preventDefault();
    });
    win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
    void win.loadURL(`mamori-app://app/dist/web/renderer/${page}`);
    windows.set(page, win);
  }

  function refreshTray(): void {
    if (!tray) return;
    const state = trayState(status, lastBlockedAt, Date.now());
    tray.setImage(icon(state));
    tray.setToolTip(`Mamori — ${mainText(lang, `tray.${state}`)}`);
    const template = menuModel(lang, state, status).map((item) =>
      item.separator
        ? { type: 'separator' as const }
        : {
            label: item.label,
            enabled: item.enabled,
            click: () => (item.action === 'quit' ? app.quit() : item.action ? openWindow(PAGES[item.action]) : undefined),
          },
    );
    tray.setContextMenu(Menu.buildFromTemplate(template));
  }

  async function poll(): Promise<void> {
    if (!agent) return;
    try {
      status = await agent.status();
      const events = await agent.recentEvents({ limit: 50 });
      const fresh = lastSeq < 0 ? [] : newBlocks(events, lastSeq);
      lastSeq = Math.max(lastSeq, ...events.map((e) => e.seq), 0);
      for (const block of fresh) {
        lastBlockedAt = Date.now();
        const note = new Notification({
          title: mainText(lang, 'notify.blocked.title'),
          body: mainText(lang, 'notify.blocked.body', { device: deviceName(block.payload) }),
          actions: [{ type: 'button', text: mainText(lang, 'notify.blocked.action') }],
        });
        note.on('action', () => openWindow(PAGES.request));
        note.on('click', () => openWindow(PAGES.request));
        note.show();
      }
    } catch {
      status = null;
    }
    refreshTray();
  }

  /** Connects to the agent, again and again with backoff while it is unreachable. */
  function connect(attempt = 0): void {
    const socket = net.connect(IPC_PATH);
    socket.once('connect', () => {
      const transport = streamLineTransport(socket);
      agent = createIpcClient(transport);
      transport.onClose(() => {
        agent = null;
        status = null;
        refreshTray();
        setTimeout(() => connect(0), 1000);
      });
      void poll();
    });
    socket.once('error', () => {
      refreshTray();
      setTimeout(() => connect(attempt + 1), Math.min(60_000, 1000 * 2 ** attempt));
    });
  }

  app.on('second-instance', () => openWindow(PAGES.info));
  app.on('window-all-closed', () => undefined); // the tray stays
  void app.whenReady().then(() => {
    lang = langFromLocale(app.getLocale());
    protocol.handle('mamori-app', (request) => {
      const url = new URL(request.url);
      const file = path.normalize(path.join(APP_ROOT, decodeURIComponent(url.pathname)));
      const allowed = [path.join(APP_ROOT, 'dist', 'web'), path.join(APP_ROOT, 'assets')].some((dir) => file.startsWith(dir + path.sep));
      if (!allowed) return new Response('not found', { status: 404 });
      return electronNet.fetch(`file://${file}`);
    });
    registerBridgeHandlers(ipcMain as never, {
      agent: () => agent,
      windowIds: () => new Set([...windows.values()].filter((w) => !w.isDestroyed()).map((w) => w.webContents.id)),
      locale: () => lang,
    });
    tray = new Tray(icon('degraded'));
    refreshTray();
    connect();
    setInterval(() => void poll(), 10_000);
    for (const kind of ['lock-screen', 'unlock-screen', 'suspend', 'resume'] as const) {
      powerMonitor.on(kind as 'suspend', () => {
        const map = { 'lock-screen': 'lock', 'unlock-screen': 'unlock', suspend: 'suspend', resume: 'resume' } as const;
        void agent?.sessionEvent({ kind: map[kind] }).catch(() => undefined);
      });
    }
  });
}
