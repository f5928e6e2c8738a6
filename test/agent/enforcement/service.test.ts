import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDeviceHints, type UsbDetectionModule } from '../../../src/agent/enforcement/hints';
import type { ReconcileResult, Reconciler } from '../../../src/agent/enforcement/reconciler';
import { createEnforcementService } from '../../../src/agent/enforcement/service';
import { silentLogger } from '../../../src/agent/logger';

/** usb-detection as the agent sees it: an emitter with a monitor that can be started and stopped. */
function fakeDetection(): UsbDetectionModule & { plug(): void; monitoring: boolean } {
  const emitter = new EventEmitter();
  const d = {
    monitoring: false,
    startMonitoring: () => void (d.monitoring = true),
    stopMonitoring: () => void (d.monitoring = false),
    on: (event: 'change', cb: () => void) => emitter.on(event, cb),
    off: (event: 'change', cb: () => void) => emitter.off(event, cb),
    plug: () => void emitter.emit('change'),
  };
  return d;
}

/** A reconciler whose passes take `ms` and are counted by reason. */
function slowReconciler(ms = 20): Reconciler & { passes: string[] } {
  const passes: string[] = [];
  return {
    passes,
    async reconcile(reason): Promise<ReconcileResult> {
      passes.push(reason);
      await new Promise((r) => setTimeout(r, ms));
      return { state: 'active', changed: false };
    },
    state: () => (passes.length ? 'active' : 'unknown'),
    reasons: () => [],
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('enforcement service', () => {
  it('reconciles at start, on hints (a burst becomes one more pass) and on the timer, and stops all three', async () => {
    vi.useFakeTimers();
    const detection = fakeDetection();
    const reconciler = slowReconciler(20);
    const service = createEnforcementService({ reconciler, hints: createDeviceHints({ logger: silentLogger, load: () => detection }), intervalMs: 1000 });
    const started = service.start();
    await vi.advanceTimersByTimeAsync(20);
    expect((await started).state).toBe('active');
    expect(reconciler.passes).toEqual(['start']);
    expect(detection.monitoring).toBe(true);

    // One stick brings several notices (device, then its interfaces): one pass, then one more.
    for (let i = 0; i < 5; i++) detection.plug();
    await vi.advanceTimersByTimeAsync(100);
    expect(reconciler.passes).toEqual(['start', 'hint', 'hint']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(reconciler.passes).toEqual(['start', 'hint', 'hint', 'timer']);
    expect(service.state()).toBe('active');

    detection.plug();
    const stopped = service.stop(); // waits for the pass the plug started
    await vi.advanceTimersByTimeAsync(20);
    await stopped;
    expect(detection.monitoring).toBe(false);
    const count = reconciler.passes.length;
    detection.plug();
    await vi.advanceTimersByTimeAsync(5000);
    expect(reconciler.passes.length).toBe(count);
  });

  it('keeps enforcing on the timer when usb-detection cannot load, says so once, and reports degraded', async () => {
    vi.useFakeTimers();
    const reconciler = slowReconciler(1);
    const warnings: string[] = [];
    const hints = createDeviceHints({
      logger: silentLogger,
      load: () => {
        throw new Error('Cannot find module usb-detection/build/Release/detection.node\nRequire stack: …');
      },
    });
    const service = createEnforcementService({ reconciler, hints, intervalMs: 30_000, onHintsUnavailable: (why) => warnings.push(why) });
    const started = service.start();
    await vi.advanceTimersByTimeAsync(1);
    await started;
    await vi.advanceTimersByTimeAsync(90_010);
    expect(warnings).toEqual(['Cannot find module usb-detection/build/Release/detection.node']);
    expect(reconciler.passes).toEqual(['start', 'timer', 'timer', 'timer']);
    expect(service.state()).toBe('degraded');
    expect(service.hintsUnavailable()).toContain('usb-detection');
    await service.stop();
  });

  it('treats a monitor that fails to start like one that cannot load', async () => {
    const detection = fakeDetection();
    detection.startMonitoring = () => {
      throw new Error('udev_monitor_new_from_netlink failed');
    };
    const hints = createDeviceHints({ logger: silentLogger, load: () => detection });
    expect(hints.start(() => undefined)).toBe('udev_monitor_new_from_netlink failed');
    hints.stop(); // a no-op, not a throw
  });

  it('starts the real usb-detection monitor (native build, libudev) and releases it on stop', () => {
    // BUILD-NOTES: usb-detection builds against libudev-dev and monitors in a container too.
    const hints = createDeviceHints({ logger: silentLogger });
    expect(hints.start(() => undefined)).toBeNull();
    hints.stop();
  });
});
