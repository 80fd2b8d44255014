export * from './batcher.js';
export * from './errors.js';
