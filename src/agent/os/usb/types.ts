import type { UsbDevice } from '../../../shared';

/**
 * One OS's list of USB devices, read the same way for the inventory and for enforcement
 * (docs/design.md#layering): sysfs on Linux, pnputil on Windows, system_profiler on macOS.
 */
export interface UsbReader {
  /**
   * Every USB device with its interfaces and the OS's view of whether it is usable.
   * @throws Error when the OS cannot be asked at all (the tool is missing or fails).
   */
  devices(): Promise<UsbDevice[]>;
}
