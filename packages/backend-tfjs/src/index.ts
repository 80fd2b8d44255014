export * from './runtime.js';
export * from './model.js';
export * from './backend.js';
export { registerWasmGradients } from './wasm-gradients.js';
export * from './training.js';
