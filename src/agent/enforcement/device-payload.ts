import type { DevicePayload, UsbDevice } from '../../shared';

/** The device fields every device event carries. */
export function devicePayload(d: UsbDevice): DevicePayload {
  return { vendorId: d.vendorId, productId: d.productId, serial: d.serial, manufacturer: d.manufacturer, product: d.product, deviceClass: d.deviceClass, port: d.port };
}
