export * from './model-card.js';
export * from './classifier.js';
export * from './finetune.js';
export * from './evaluate.js';
