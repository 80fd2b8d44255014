export { compileToOnnx, type CompiledOnnx, type CompileOptions, DEFAULT_OPSET, EXTERNAL_DATA_THRESHOLD, OnnxCompileError, type OnnxGraphExtension, type OnnxGraphInfo, SUPPORTED_OPSETS } from './compile.js';
export * from './runner.js';
export * from './ort.js';
export * from './model-cache.js';
export { encodeModel } from './onnx-proto.js';
export type { AttributeValue, OnnxDataType, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from './onnx-proto.js';
export { compileEvalGraph, compileTrainingGraph, TrainingCompileError, type TrainingGraph, type TrainingGraphOptions, type TrainingIo, type IoRole } from './training/training-graph.js';
export * from './training/session.js';
export { planNchwc, probeNchwc } from './training/nchwc.js';
