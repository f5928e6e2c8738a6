import type { Logger } from '../logger';

/** USB plug and unplug notices. Only hints: the reconciler reads the full state on each. */
export interface DeviceHints {
  stop(): void;
}

/**
 * Starts usb-detection's monitor. Returns null, with the reason, when the native module cannot
 * load or start (no libudev, a container without /sys/bus/usb): the timer keeps enforcing then.
 */
export function startDeviceHints(onHint: () => void, logger: Pick<Logger, 'warn'>): { hints: DeviceHints | null; error: string | null } {
  try {
    // Loaded lazily: a broken native build must cost the agent its hints, not its start.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const detection = require('usb-detection') as {
      startMonitoring(): void;
      stopMonitoring(): void;
      on(event: 'change', cb: () => void): void;
    };
    detection.startMonitoring();
    detection.on('change', onHint);
    return { hints: { stop: () => detection.stopMonitoring() }, error: null };
  } catch (err) {
    const error = (err as Error).message.split('\n')[0] ?? 'unknown error';
    logger.warn({ error }, 'USB device hints unavailable; enforcing on the timer only');
    return { hints: null, error };
  }
}
