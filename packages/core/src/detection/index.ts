export * from './bifpn.js';
export * from './efficientdet-configs.js';
export * from './efficientdet.js';
