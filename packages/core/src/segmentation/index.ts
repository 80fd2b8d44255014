export * from './decoder-configs.js';
export * from './segmenter.js';
