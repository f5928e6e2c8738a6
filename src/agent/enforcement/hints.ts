import type { Logger } from '../logger';

/**
 * USB plug and unplug notices. Only hints: the reconciler reads the full state on each, so a
 * missed or duplicated hint costs latency, never enforcement.
 */
export interface DeviceHints {
  /**
   * Starts listening; `onHint` (or the one given at creation) is called on every plug or unplug.
   * Never throws: returns null when listening, or why hints are unavailable (logged once), in
   * which case this object stays a no-op and the timer alone drives enforcement.
   */
  start(onHint?: () => void): string | null;
  /** Stops listening. Safe to call when not started. */
  stop(): void;
}

/** The part of usb-detection's API that hints use. */
export interface UsbDetectionModule {
  startMonitoring(): void;
  stopMonitoring(): void;
  on(event: 'change', cb: () => void): unknown;
  off?(event: 'change', cb: () => void): unknown;
}

function loadUsbDetection(): UsbDetectionModule {
  // Loaded lazily: a broken native build must cost the agent its hints, not its start.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('usb-detection') as UsbDetectionModule;
}

/**
 * Device hints from usb-detection (libudev on Linux, WM_DEVICECHANGE on Windows, IOKit on
 * macOS). When the native module cannot load (no libudev, no build for this Node) or its monitor
 * cannot start, `start` reports why and the hints stay silent. `load` replaces the module in
 * tests.
 */
export function createDeviceHints(opts: { onHint?: () => void; logger: Pick<Logger, 'warn'>; load?: () => UsbDetectionModule }): DeviceHints {
  let running: { detection: UsbDetectionModule; listener: () => void } | null = null;
  return {
    start(onHint) {
      if (running) return null;
      const handler = onHint ?? opts.onHint;
      const listener = () => handler?.();
      try {
        const detection = (opts.load ?? loadUsbDetection)();
        detection.startMonitoring();
        detection.on('change', listener);
        running = { detection, listener };
        return null;
      } catch (err) {
        const error = (err as Error).message.split('\n')[0] || 'unknown error';
        opts.logger.warn({ error }, 'USB device hints unavailable; enforcing on the timer only');
        return error;
      }
    },
    stop() {
      if (!running) return;
      const { detection, listener } = running;
      running = null;
      try {
        detection.off?.('change', listener);
        // usb-detection's monitor keeps the event loop alive until it is stopped.
        detection.stopMonitoring();
      } catch {
        // Already stopped or never really started: nothing left to release.
      }
    },
  };
}
