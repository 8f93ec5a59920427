export * from './errors.js';
export type * from './verify/types.js';
