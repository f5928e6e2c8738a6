import { el, formatDate, initPage, showError, t } from './common.js';
import type { MessageKey } from './messages.js';

interface Candidate {
  /** The seq of its `device.blocked` event: the agent takes the device from there, nothing else. */
  seq: number;
  vendorId: string;
  productId: string;
  serial: string;
  port: string;
  label: string;
}

async function main(): Promise<void> {
  await initPage();
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const wanted = new URLSearchParams(location.search);
  const candidates: Candidate[] = [];
  const select = $<HTMLSelectElement>('device');
  /** Lists the blocked media; until there is one, looks again every 2 s (a stick may come later). */
  const loadCandidates = async (): Promise<void> => {
    const events = await window.mamori.recentEvents({ limit: 200 }).catch(() => []);
    for (const e of events.filter((x) => x.type === 'device.blocked')) {
      const p = e.payload as { vendorId: string; productId: string; serial: string; manufacturer: string; product: string; port: string };
      if (candidates.some((c) => c.vendorId === p.vendorId && c.productId === p.productId && c.serial === p.serial && c.port === p.port)) continue;
      const name = [p.manufacturer, p.product].filter(Boolean).join(' ') || `${p.vendorId}:${p.productId}`;
      candidates.push({
        seq: e.seq,
        vendorId: p.vendorId,
        productId: p.productId,
        serial: p.serial,
        port: p.port,
        label: `${name}${p.serial ? ` (${p.serial})` : ''}`,
      });
      const option = el('option', candidates[candidates.length - 1]!.label);
      option.value = String(candidates.length - 1);
      if (wanted.get('serial') === p.serial && wanted.get('port') === p.port) option.selected = true;
      select.append(option);
    }
    $('noDevice').hidden = candidates.length > 0;
    $<HTMLButtonElement>('submit').disabled = candidates.length === 0;
    if (candidates.length === 0) setTimeout(() => void loadCandidates(), 2000);
  };
  await loadCandidates();
  const minutes = $<HTMLSelectElement>('minutes');
  for (const m of [30, 60, 240, 480]) {
    const option = el('option', t(`minutes.${m}` as MessageKey));
    option.value = String(m);
    if (m === 60) option.selected = true;
    minutes.append(option);
  }
  $('reason').focus();

  let requestId: string | undefined;
  $<HTMLFormElement>('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('error').hidden = true;
    const device = candidates[Number(select.value)];
    const reason = $<HTMLInputElement>('reason').value.trim();
    if (!device || !reason) {
      $('reason').focus();
      return;
    }
    try {
      const result = await window.mamori.requestException({
        blockedSeq: device.seq,
        reason,
        minutes: Number(minutes.value),
      });
      requestId = result.requestId;
      $('requestCode').textContent = result.requestCode;
      // The exact device, as the approver must be told it when the request has not reached them.
      $('requestScope').textContent =
        `${result.device.vendorId}:${result.device.productId} ${result.device.serial !== undefined ? `serial ${result.device.serial}` : `port ${result.device.port ?? ''}`}`;
      $('form').hidden = true;
      $('requested').hidden = false;
      $('code').focus();
    } catch (err) {
      showError($('error'), err);
    }
  });

  $<HTMLFormElement>('unlock').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('error').hidden = true;
    const code = $<HTMLInputElement>('code').value.trim();
    if (!code) return;
    try {
      const granted = await window.mamori.redeemUnlockCode({ code, ...(requestId ? { requestId } : {}) });
      $('until').textContent = formatDate(granted.expiresAt);
      $('requested').hidden = true;
      $('granted').hidden = false;
    } catch (err) {
      showError($('error'), err);
    }
  });
}

void main();
