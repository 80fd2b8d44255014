export * from './errors.js';
export * from './coco-format.js';
export * from './coco-eval.js';
export * from './anchors.js';
export * from './box-coder.js';
export * from './nms.js';
export * from './postprocess.js';
export * from './anchor-labeler.js';
