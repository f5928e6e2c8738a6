import type { DevicePayload, EnforcementState, Policy, UsbDevice } from '../../shared';
import type { ActiveException } from '../exceptions';
import type { Logger } from '../logger';
import type { EventStore } from '../store';
import { evaluateDevice, type Decision } from './evaluate';
import type { DeviceDecision, Enforcer } from './types';

const KEYS = { known: 'enforcement.known', applied: 'enforcement.applied' } as const;

export interface ReconcileResult {
  state: EnforcementState;
  /** Whether the pass wrote to the OS or recorded an event. */
  changed: boolean;
}

export interface Reconciler {
  /** One level-triggered pass: read everything, decide, apply, read back, record. */
  reconcile(reason: string): Promise<ReconcileResult>;
  state(): EnforcementState;
}

function deviceKey(d: UsbDevice): string {
  return `${d.port}|${d.vendorId}:${d.productId}|${d.serial}`;
}

/** The device fields every device event carries. */
export function devicePayload(d: UsbDevice): DevicePayload {
  return { vendorId: d.vendorId, productId: d.productId, serial: d.serial, manufacturer: d.manufacturer, product: d.product, deviceClass: d.deviceClass, port: d.port };
}

/**
 * The reconciler of DESIGN.md's enforcement model. It keeps what it knew of each device in the
 * store, so it records `device.attached`/`detached` on change and `device.blocked`/`allowed` once
 * per attach or change of decision, never on a pass where nothing changed.
 */
export function createReconciler(opts: {
  store: EventStore;
  enforcer: Enforcer;
  getPolicy: () => Policy | null;
  getExceptions: () => ActiveException[];
  logger: Pick<Logger, 'warn' | 'error'>;
  now?: () => Date;
}): Reconciler {
  let current: EnforcementState = 'unknown';
  // One pass at a time: a hint arriving mid-pass waits rather than racing the writes.
  let running: Promise<ReconcileResult> = Promise.resolve({ state: current, changed: false });

  async function pass(reason: string): Promise<ReconcileResult> {
    const { store } = opts;
    const policy = opts.getPolicy();
    if (!policy) {
      current = 'off';
      return { state: current, changed: false };
    }
    const now = opts.now?.() ?? new Date();
    const exceptions = opts.getExceptions();
    const devices = await opts.enforcer.devices();
    const decisions: DeviceDecision[] = devices.map((device) => ({ device, evaluation: evaluateDevice(device, policy, exceptions, now) }));
    const result = await opts.enforcer.enforce(policy.removableMedia.mode, decisions, policy.removableMedia.allow);
    const mode = policy.removableMedia.mode;
    current = result.failures.length > 0 ? 'degraded' : mode === 'audit' || mode === 'allow' ? 'audit' : 'active';
    for (const f of result.failures) opts.logger.warn({ reason }, `enforcement: ${f}`);

    type Known = { decision: Decision | 'none'; device: DevicePayload };
    const known = JSON.parse(store.getState(KEYS.known) ?? '{}') as Record<string, Known>;
    const next: Record<string, Known> = {};
    let recorded = false;
    store.transaction(() => {
      for (const { device, evaluation } of decisions) {
        if (device.rootHub) continue;
        const key = deviceKey(device);
        const decision: Decision | 'none' = evaluation.interfaces.length ? evaluation.decision : 'none';
        const payload = devicePayload(device);
        next[key] = { decision, device: payload };
        if (!(key in known)) {
          store.append({ type: 'device.attached', payload });
          recorded = true;
        }
        if (decision !== 'none' && known[key]?.decision !== decision) {
          store.append({
            type: decision === 'block' ? 'device.blocked' : 'device.allowed',
            payload: { ...payload, reason: evaluation.reason, mode, interfaces: evaluation.interfaces },
          });
          recorded = true;
        }
      }
      for (const [key, gone] of Object.entries(known)) {
        if (key in next) continue;
        store.append({ type: 'device.detached', payload: gone.device });
        recorded = true;
      }
      for (const d of result.drift) {
        store.append({ type: 'policy.drift_corrected', payload: { control: d.control, expected: d.expected, found: d.found, ...(d.device ? { device: devicePayload(d.device) } : {}) } });
        recorded = true;
      }
      const applied = `${policy.segment}|${policy.version}|${current}`;
      if (store.getState(KEYS.applied) !== applied) {
        store.append({ type: 'policy.applied', payload: { segment: policy.segment, version: policy.version, mode, issuedAt: policy.issuedAt, enforcement: current } });
        store.setState(KEYS.applied, applied);
        recorded = true;
      }
      store.setState(KEYS.known, JSON.stringify(next));
    });
    return { state: current, changed: result.changed || recorded };
  }

  return {
    reconcile(reason) {
      running = running.then(
        () => pass(reason),
        () => pass(reason),
      );
      return running;
    },
    state: () => current,
  };
}
