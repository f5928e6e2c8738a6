import type { AllowEntry, RemovableMediaMode, UsbDevice } from '../../shared';
import type { Evaluation } from './evaluate';

/**
 * A granted, time-boxed exception for one device on this terminal. Declared once, by the
 * exception book that grants and expires them (src/agent/exceptions.ts); re-exported here because
 * enforcement is what consumes it. Evaluation reads only `device` and `expiresAt`.
 */
export type { ActiveException, ExceptionDevice } from '../exceptions';

/** A control found other than Mamori had set it: someone changed it by hand. */
export interface Drift {
  /** The control, as recorded: `1-2:1.0 authorized`, `usb1 interface_authorized_default`, … */
  control: string;
  expected: string;
  found: string;
  device?: UsbDevice;
  /**
   * Set when the change hit Mamori's own machinery rather than one device's setting (its udev
   * rules file edited or removed): recorded as `tamper.detected` as well as corrected.
   */
  tamper?: boolean;
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
  /**
   * Every USB device, with the OS's own view of whether it is usable.
   * @throws Error when the OS cannot be asked at all (the tool is missing or fails); the
   * reconciler then reports `degraded`.
   */
  devices(): Promise<UsbDevice[]>;
  /**
   * Brings the OS controls to what `mode` and the decisions want, and reads them back. `allow` is
   * the allowlist in force, for OSes that must name allowed devices before they are plugged in.
   * Never throws for a control it cannot set: that is a `failures` entry.
   */
  enforce(mode: RemovableMediaMode, decisions: DeviceDecision[], allow?: AllowEntry[]): Promise<EnforcerPass>;
}
