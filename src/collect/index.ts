export * from './types.js';
export * from './http.js';
export * from './files.js';
export * from './store.js';
