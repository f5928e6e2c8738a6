export * from './collect';
export * from './probes';
