import type { DevicePayload, EnforcementState, Policy, UsbDevice } from '../../shared';
import type { Logger } from '../logger';
import type { EventStore } from '../store';
import { evaluateDevice, type Decision } from './evaluate';
import type { ActiveException, DeviceDecision, Enforcer, EnforcerPass } from './types';

const KEYS = { known: 'enforcement.known', applied: 'enforcement.applied' } as const;

/** What one reconcile pass ended in. */
export interface ReconcileResult {
  /** `active`, `degraded` (a control could not be read, set or read back), `audit`, or `off` (no policy yet). */
  state: EnforcementState;
  /** Whether the pass wrote to the OS or recorded an event. */
  changed: boolean;
}

/** Level-triggered enforcement of the removable-media policy (DESIGN.md, "Enforcement model"). */
export interface Reconciler {
  /**
   * One level-triggered pass: read every device and control, decide, apply, read back, record.
   * Passes run one at a time, in call order. Never rejects: an OS that cannot be read makes the
   * pass `degraded` and is logged.
   */
  reconcile(reason: string): Promise<ReconcileResult>;
  /** The state of the last pass (`unknown` before the first). */
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
    const mode = policy.removableMedia.mode;
    const failures: string[] = [];
    let devices: UsbDevice[] | null = null;
    try {
      devices = await opts.enforcer.devices();
    } catch (err) {
      // The OS could not list devices (pnputil or system_profiler missing or failing). The
      // device-independent controls (rules file, registry policy) are still applied below; the
      // device record is left as it was, since nothing is known about devices.
      failures.push(`cannot read devices: ${(err as Error).message}`);
    }
    const decisions: DeviceDecision[] = (devices ?? []).map((device) => ({ device, evaluation: evaluateDevice(device, policy, exceptions, now) }));
    let result: EnforcerPass;
    try {
      result = await opts.enforcer.enforce(mode, decisions, policy.removableMedia.allow);
    } catch (err) {
      result = { drift: [], failures: [`cannot apply controls: ${(err as Error).message}`], changed: false };
    }
    failures.push(...result.failures);
    current = failures.length > 0 ? 'degraded' : mode === 'audit' || mode === 'allow' ? 'audit' : 'active';
    for (const f of failures) opts.logger.warn({ reason }, `enforcement: ${f}`);

    type Known = { decision: Decision | 'none'; device: DevicePayload };
    const known = JSON.parse(store.getState(KEYS.known) ?? '{}') as Record<string, Known>;
    const next: Record<string, Known> = {};
    let recorded = false;
    store.transaction(() => {
      for (const { device, evaluation } of devices === null ? [] : decisions) {
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
        if (key in next || devices === null) continue;
        store.append({ type: 'device.detached', payload: gone.device });
        recorded = true;
      }
      for (const d of result.drift) {
        const device = d.device ? { device: devicePayload(d.device) } : {};
        if (d.tamper) store.append({ type: 'tamper.detected', payload: { what: d.control, detail: `expected ${d.expected}, found ${d.found}; restored`, ...device } });
        store.append({ type: 'policy.drift_corrected', payload: { control: d.control, expected: d.expected, found: d.found, ...device } });
        recorded = true;
      }
      if (recordApplied(policy, mode)) recorded = true;
      if (devices !== null) store.setState(KEYS.known, JSON.stringify(next));
    });
    return { state: current, changed: result.changed || recorded };
  }

  /** Records `policy.applied` when the policy version or what enforcement achieved changes. */
  function recordApplied(policy: Policy, mode: Policy['removableMedia']['mode']): boolean {
    const applied = `${policy.segment}|${policy.version}|${current}`;
    if (opts.store.getState(KEYS.applied) === applied) return false;
    opts.store.transaction(() => {
      opts.store.append({ type: 'policy.applied', payload: { segment: policy.segment, version: policy.version, mode, issuedAt: policy.issuedAt, enforcement: current } });
      opts.store.setState(KEYS.applied, applied);
    });
    return true;
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
