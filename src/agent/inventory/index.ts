export * from './collect';
export * from './linux-usb';
export * from './probes';
