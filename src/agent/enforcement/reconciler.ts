import { CanonicalJsonError, EventSchemaError, sanitizeDeep, sanitizeText, type DegradedReason, type DevicePayload, type EnforcementState, type NewEvent, type Policy, type UsbDevice } from '../../shared';
import type { Logger } from '../logger';
import type { EventStore } from '../store';
import { devicePayload } from './device-payload';
import { evaluateDevice, type Decision } from './evaluate';
import type { ActiveException, DeviceDecision, Drift, Enforcer, EnforcerPass } from './types';
import { STATE_KEYS } from '../state-keys';


/** What one reconcile pass ended in. */
export interface ReconcileResult {
  /** `active`, `degraded` (a control could not be read, set or read back), `audit`, or `off` (no policy yet). */
  state: EnforcementState;
  /** Whether the pass wrote to the OS or recorded an event. */
  changed: boolean;
  /** Why the pass is `degraded`; absent when it is not. */
  reasons?: DegradedReason[];
}

/** Level-triggered enforcement of the removable-media policy (docs/design.md#enforcement-model). */
export interface Reconciler {
  /**
   * One level-triggered pass: read every device and control, decide, apply, read back, record.
   * Passes run one at a time, in call order. Never rejects: an OS that cannot be read, or a store
   * that cannot record, makes the pass `degraded` and is logged; an event the store refuses (its
   * text is invalid) is recorded as an `agent.warning` instead.
   */
  reconcile(reason: string): Promise<ReconcileResult>;
  /** The state of the last pass (`unknown` before the first). */
  state(): EnforcementState;
  /** Why the last pass was `degraded` (empty otherwise). */
  reasons(): DegradedReason[];
}

function deviceKey(d: UsbDevice): string {
  return `${d.port}|${d.vendorId}:${d.productId}|${d.serial}`;
}

export { devicePayload } from './device-payload';

type Record_ = (event: NewEvent) => void;
type Known = { decision: Decision | 'none'; device: DevicePayload };

/**
 * `device.attached`/`detached` on change and `device.blocked`/`allowed` once per attach or change
 * of decision, against what the store knew; keeps what it knows now. Inside the pass's transaction.
 */
function recordDevices(store: EventStore, record: Record_, decisions: DeviceDecision[], mode: Policy['removableMedia']['mode']): boolean {
  const known = JSON.parse(store.getState(STATE_KEYS.enforcementKnown) ?? '{}') as Record<string, Known>;
  const next: Record<string, Known> = {};
  let recorded = false;
  for (const { device, evaluation } of decisions) {
    if (device.rootHub) continue;
    const key = deviceKey(device);
    const decision: Decision | 'none' = evaluation.interfaces.length ? evaluation.decision : 'none';
    const payload = devicePayload(device);
    next[key] = { decision, device: payload };
    if (!(key in known)) {
      record({ type: 'device.attached', payload });
      recorded = true;
    }
    if (decision !== 'none' && known[key]?.decision !== decision) {
      record({
        type: decision === 'block' ? 'device.blocked' : 'device.allowed',
        payload: { ...payload, reason: evaluation.reason, mode, interfaces: evaluation.interfaces },
      });
      recorded = true;
    }
  }
  for (const [key, gone] of Object.entries(known)) {
    if (key in next) continue;
    record({ type: 'device.detached', payload: gone.device });
    recorded = true;
  }
  store.setState(STATE_KEYS.enforcementKnown, JSON.stringify(next));
  return recorded;
}

/**
 * `policy.drift_corrected` (and `tamper.detected` for Mamori's own machinery) for this pass's
 * drift and for drift the start-up pass corrected (src/agent/start-enforcement.ts), which is
 * forgotten in the same transaction.
 */
function recordDrift(store: EventStore, record: Record_, drift: Drift[]): boolean {
  const carried = JSON.parse(store.getState(STATE_KEYS.enforcementStartDrift) ?? '[]') as Drift[];
  if (carried.length > 0) store.deleteState(STATE_KEYS.enforcementStartDrift);
  for (const d of [...carried, ...drift]) {
    const device = d.device ? { device: devicePayload(d.device) } : {};
    if (d.tamper) record({ type: 'tamper.detected', payload: { what: d.control, detail: `expected ${d.expected}, found ${d.found}; restored`, ...device } });
    record({ type: 'policy.drift_corrected', payload: { control: d.control, expected: d.expected, found: d.found, ...device } });
  }
  return carried.length + drift.length > 0;
}

/**
 * One read-decide-apply round against the OS. Never throws: a device list the OS cannot give
 * (`devices: null`) or controls it cannot set are failures with their degraded reasons.
 */
async function enforceOnce(enforcer: Enforcer, policy: Policy, exceptions: ActiveException[], now: Date) {
  const failures: string[] = [];
  const why = new Set<DegradedReason>();
  let devices: UsbDevice[] | null = null;
  try {
    // Device lists are untrusted text from the OS: sanitized once here for every enforcer.
    devices = sanitizeDeep(await enforcer.devices());
  } catch (err) {
    why.add('devices_unreadable');
    // The OS could not list devices (pnputil or system_profiler missing or failing). The
    // device-independent controls (rules file, registry policy) are still applied below; the
    // device record is left as it was, since nothing is known about devices.
    failures.push(`cannot read devices: ${(err as Error).message}`);
  }
  const decisions: DeviceDecision[] = (devices ?? []).map((device) => ({ device, evaluation: evaluateDevice(device, policy, exceptions, now) }));
  let result: EnforcerPass;
  try {
    result = await enforcer.enforce(policy.removableMedia.mode, decisions, policy.removableMedia.allow);
  } catch (err) {
    result = { drift: [], failures: [`cannot apply controls: ${(err as Error).message}`], changed: false };
  }
  if (result.failures.length > 0) why.add('controls_not_applied');
  failures.push(...result.failures);
  return { devices, decisions, result, failures, why };
}

/** Records `policy.applied` when the policy version or what enforcement achieved changes. */
function recordApplied(store: EventStore, record: Record_, policy: Policy, state: EnforcementState): boolean {
  const applied = `${policy.segment}|${policy.version}|${state}`;
  if (store.getState(STATE_KEYS.enforcementApplied) === applied) return false;
  store.transaction(() => {
    record({ type: 'policy.applied', payload: { segment: policy.segment, version: policy.version, mode: policy.removableMedia.mode, issuedAt: policy.issuedAt, enforcement: state } });
    store.setState(STATE_KEYS.enforcementApplied, applied);
  });
  return true;
}

/**
 * The reconciler of the enforcement model (docs/design.md#enforcement-model). It keeps what it knew of each device in the
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
  let reasons: DegradedReason[] = [];
  // One pass at a time: a hint arriving mid-pass waits rather than racing the writes.
  let running: Promise<ReconcileResult> = Promise.resolve({ state: current, changed: false });

  /**
   * Appends one event; an event the store refuses for its content (a schema or canonical-JSON
   * error, raised before anything is written) becomes an `agent.warning`, so one hostile device
   * string cannot stop the others being recorded. A store that cannot write still throws.
   */
  function record(event: NewEvent): void {
    try {
      opts.store.append(event);
    } catch (err) {
      if (!isContentError(err)) throw err;
      const message = sanitizeText(`${event.type} could not be recorded: ${(err as Error).message}`, 500);
      opts.logger.warn({ type: event.type }, message);
      opts.store.append({ type: 'agent.warning', payload: { component: 'enforcement', code: 'event_refused', message } });
    }
  }

  async function pass(reason: string): Promise<ReconcileResult> {
    try {
      return await attempt(reason);
    } catch (err) {
      // The store could not record (disk full, I/O error, a lock held too long): enforcement
      // itself ran, but what it did is not on record, so the terminal is degraded until it is.
      const message = sanitizeText((err as Error).message, 500);
      current = 'degraded';
      reasons = ['store_error'];
      opts.logger.error({ reason, err: message }, 'enforcement: the pass could not be recorded');
      try {
        opts.store.append({ type: 'agent.warning', payload: { component: 'enforcement', code: 'store_error', message } });
      } catch {
        // The store refuses even the warning; the log line above is all that can be kept.
      }
      return { state: current, changed: false, reasons: [...reasons] };
    }
  }

  async function attempt(reason: string): Promise<ReconcileResult> {
    const { store } = opts;
    const policy = opts.getPolicy();
    if (!policy) {
      current = 'off';
      reasons = [];
      return { state: current, changed: false };
    }
    const mode = policy.removableMedia.mode;
    const { devices, decisions, result, failures, why } = await enforceOnce(opts.enforcer, policy, opts.getExceptions(), opts.now?.() ?? new Date());
    current = failures.length > 0 ? 'degraded' : mode === 'audit' || mode === 'allow' ? 'audit' : 'active';
    reasons = [...why];
    for (const f of failures) opts.logger.warn({ reason }, `enforcement: ${sanitizeText(f, 500)}`);

    let recorded = false;
    store.transaction(() => {
      if (devices !== null) recorded = recordDevices(store, record, decisions, mode);
      if (recordDrift(store, record, result.drift)) recorded = true;
      if (recordApplied(store, record, policy, current)) recorded = true;
    });
    return { state: current, changed: result.changed || recorded, ...(reasons.length ? { reasons: [...reasons] } : {}) };
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
    reasons: () => [...reasons],
  };
}

/** Whether the store refused an event for what it says, before writing anything. */
function isContentError(err: unknown): boolean {
  return err instanceof EventSchemaError || err instanceof CanonicalJsonError;
}
