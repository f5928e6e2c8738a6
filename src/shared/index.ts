/** The contracts every Mamori process shares. Pure: no `node:*`, no `electron`. */
export * from './canonical-json';
export * from './clock';
export * from './common';
export * from './errors';
export * from './events';
export * from './hash';
export * from './inventory';
export * from './ipc';
export * from './policy';
export * from './sync';
export * from './version';
export * from './ipc-protocol';
export * from './unlock';
export * from './bridge';
export * from './provision';
export * from './text';
export * from './http';
