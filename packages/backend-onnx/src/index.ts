export * from './compile.js';
export * from './runner.js';
export { encodeModel } from './onnx-proto.js';
export type { AttributeValue, OnnxDataType, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from './onnx-proto.js';
