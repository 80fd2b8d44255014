export * from './batcher.js';
export * from './errors.js';
export * from './metrics.js';
export * from './model.js';
export * from './oip.js';
export * from './server.js';
export * from './tasks.js';
export * from './triton.js';
