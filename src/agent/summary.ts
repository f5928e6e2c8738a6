import type { StoredEvent } from '../shared';

/** Makes untrusted text safe for one terminal line: control characters become `\xNN`. */
export function inertText(text: unknown, max = 120): string {
  const s = String(text ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** A one-line human summary of an event for `mamori agent events` and the tray's context. */
export function summariseEvent(event: Pick<StoredEvent, 'type' | 'payload'>): string {
  const p = (event.payload ?? {}) as Record<string, unknown>;
  switch (event.type) {
    case 'agent.started':
      return `version ${inertText(p.version)} on ${inertText(p.hostname)}`;
    case 'agent.stopped':
      return inertText(p.reason);
    case 'agent.warning':
      return `${inertText(p.component)}: ${inertText(p.message)}`;
    case 'policy.applied':
      return `${inertText(p.segment)} v${inertText(p.version)} mode=${inertText(p.mode)}`;
    case 'device.attached':
    case 'device.detached':
    case 'device.blocked':
    case 'device.allowed':
      return `${inertText(p.vendorId)}:${inertText(p.productId)} serial=${inertText(p.serial, 40)} ${inertText(`${p.manufacturer ?? ''} ${p.product ?? ''}`.trim(), 60)}${p.reason ? ` (${inertText(p.reason)})` : ''}`;
    case 'login.success':
    case 'login.failure':
    case 'logout':
    case 'session.lock':
    case 'session.unlock':
      return `${inertText(p.user)} via ${inertText(p.source)}${p.remoteHost ? ` from ${inertText(p.remoteHost)}` : ''}`;
    case 'inventory.changed': {
      const changes = Array.isArray(p.changes) ? (p.changes as { summary?: unknown }[]) : [];
      return `${changes.length} change(s): ${inertText(changes.map((c) => c.summary).join('; '))}`;
    }
    case 'incident.reported':
      return `${inertText(p.receipt)} ${inertText(p.category)}`;
    case 'tamper.detected':
      return `${inertText(p.what)}: ${inertText(p.detail)}`;
    case 'policy.drift_corrected':
      return `${inertText(p.control)}: ${inertText(p.found)} → ${inertText(p.expected)}`;
    default:
      return inertText(JSON.stringify(p));
  }
}
