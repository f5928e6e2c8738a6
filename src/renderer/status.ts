import type { EnforcementState } from '../shared/ipc';
import { el, formatDate, initPage, showError, t } from './common.js';
import type { MessageKey } from './messages.js';

const STATE_TEXT: Record<EnforcementState, MessageKey> = {
  active: 'status.protected',
  audit: 'status.audit',
  degraded: 'status.degraded',
  off: 'status.degraded',
  unknown: 'status.degraded',
};

async function render(): Promise<void> {
  const $ = (id: string) => document.getElementById(id)!;
  try {
    const s = await window.mamori.status();
    const state = $('state');
    state.textContent = t(STATE_TEXT[s.enforcement]);
    state.className = `state ${s.enforcement === 'active' ? '' : s.enforcement === 'audit' ? 'audit' : 'degraded'}`;
    // Why it is degraded, in words staff can pass on to IT.
    $('reasons').replaceChildren(...(s.enforcement === 'degraded' ? s.degradedReasons : []).map((r) => el('li', t(`reason.${r}` as MessageKey))));
    ($('logo') as HTMLImageElement).src =
      `../../../assets/tray-${s.enforcement === 'active' ? 'protected' : s.enforcement === 'audit' ? 'offline' : 'degraded'}.png`;
    $('segment').textContent = s.segment ? t(`segment.${s.segment}` as MessageKey) : '-';
    $('policy').textContent = s.policyVersion === null ? '-' : `v${s.policyVersion}`;
    $('lastSync').textContent = formatDate(s.lastSyncAt);
    $('pending').textContent = String(s.pendingEvents);
    $('contact').textContent = s.incidentContact || '-';
    $('offline').hidden = s.collectorReachable;
    const events = await window.mamori.recentEvents({ limit: 100 });
    const list = $('blocked');
    list.replaceChildren();
    const seen = new Set<string>();
    for (const e of events.filter((x) => x.type === 'device.blocked')) {
      const p = e.payload as { vendorId: string; productId: string; serial: string; manufacturer: string; product: string; port: string };
      const key = `${p.vendorId}:${p.productId}:${p.serial}:${p.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const item = el('li');
      const name = [p.manufacturer, p.product].filter(Boolean).join(' ') || `${p.vendorId}:${p.productId}`;
      item.append(el('span', `${name} — ${formatDate(e.at)}`));
      const link = el('a', t('action.request'), 'button');
      link.href = `exception.html?${new URLSearchParams({ vendorId: p.vendorId, productId: p.productId, serial: p.serial, port: p.port }).toString()}`;
      item.append(link);
      list.append(item);
    }
    if (list.children.length === 0) list.append(el('li', t('status.noBlocked')));
  } catch (err) {
    $('state').textContent = t('status.unreachable');
    $('state').className = 'state degraded';
    showError($('error'), err);
  }
}

void initPage().then(render);
setInterval(() => void render(), 10_000);
