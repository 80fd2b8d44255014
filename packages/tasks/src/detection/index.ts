export * from './errors.js';
export * from './coco-format.js';
export * from './coco-eval.js';
