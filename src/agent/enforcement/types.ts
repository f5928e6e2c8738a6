import type { AllowEntry, RemovableMediaMode, UsbDevice } from '../../shared';
import type { Evaluation } from './evaluate';

/** A control found other than Mamori had set it: someone changed it by hand. */
export interface Drift {
  control: string;
  expected: string;
  found: string;
  device?: UsbDevice;
}

/** What one enforcement pass did. */
export interface EnforcerPass {
  drift: Drift[];
  /** Controls that could not be set or did not read back as set. */
  failures: string[];
  /** Whether anything was written. */
  changed: boolean;
}

/** A device and what the policy decided for it. */
export interface DeviceDecision {
  device: UsbDevice;
  evaluation: Evaluation;
}

/**
 * One OS's removable-media controls. Implementations read the full current state on every call:
 * the reconciler is level-triggered and device events are only hints.
 */
export interface Enforcer {
  /** Every USB device, with the OS's own view of whether it is usable. */
  devices(): Promise<UsbDevice[]>;
  /**
   * Brings the OS controls to what `mode` and the decisions want, and reads them back. `allow` is
   * the allowlist in force, for OSes that must name allowed devices before they are plugged in.
   */
  enforce(mode: RemovableMediaMode, decisions: DeviceDecision[], allow?: AllowEntry[]): Promise<EnforcerPass>;
}
