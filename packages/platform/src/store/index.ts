// Storage: the interface the payment domain writes through, and its two implementations.
export * from './types';
export { SqliteStore } from './sqlite';
export { PostgresStore } from './postgres';
