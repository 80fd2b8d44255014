export * from './augment.js';
export * from './dataset.js';
export * from './finetune.js';
export * from './index-png.js';
export * from './metrics.js';
export * from './segmenter.js';
export * from './evaluate.js';
