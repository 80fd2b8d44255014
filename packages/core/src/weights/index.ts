export * from './random.js';
export * from './check.js';
export * from './torchvision.js';
export * from './convert.js';
export * from './keras.js';
