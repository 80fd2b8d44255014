/** `effnet export <model> --triton DIR`: the model as a Triton Inference Server model repository. */
import { EffnetError } from '@effnet/core';
import { type Io, UsageError } from '../args.js';

interface ExportValues {
  weights?: string;
  'weights-format'?: string;
  'weights-key'?: string;
  opset?: number;
  fp16: boolean;
  'no-fold': boolean;
  resolution?: number;
  dynamic: boolean;
  force: boolean;
}

export async function exportTriton(model: string, dir: string, v: ExportValues, io: Io): Promise<number> {
  const [{ labelsOrIndices, loadModelWeights, onnxExportMetadata }, { compileToOnnx }, { graphMetadata, parseModelSpec, taskOf, TRITON_MODEL_FILE, writeTritonRepository }] = await Promise.all([
    import('@effnet/tasks'),
    import('@effnet/backend-onnx'),
    import('@effnet/serve'),
  ]);
  let spec;
  try {
    spec = parseModelSpec(model);
  } catch (e) {
    throw e instanceof EffnetError ? new UsageError(e.message) : e;
  }
  const m = await loadModelWeights(spec.model, { weights: v.weights, weightsFormat: v['weights-format'], weightsKey: v['weights-key'], inputResolution: v.dynamic ? null : v.resolution });
  if (m.onnx) throw new UsageError(`effnet export: "${spec.model}" is already an ONNX file; export the checkpoint or zoo entry it came from`);
  const compiled = compileToOnnx(m.graph, m.weights, { opset: v.opset, fp16: v.fp16, foldBatchNorm: !v['no-fold'], externalDataLocation: `${TRITON_MODEL_FILE}.data`, metadata: onnxExportMetadata(m, { file: TRITON_MODEL_FILE, precision: v.fp16 ? 'fp16' : 'fp32' }) });
  const classes = taskOf(m) === 'classify' ? graphMetadata(m.graph).outputs[0]!.shape[1] : undefined;
  const labels = classes === undefined ? undefined : m.classes?.length === classes ? m.classes : labelsOrIndices(m.labels ?? '', classes);
  const files = await writeTritonRepository(dir, { name: spec.name, graph: m.graph, onnx: compiled, labels, force: v.force });
  if (m.random) io.out('note: no --weights given, so the model has a random initialisation (for architecture work, not predictions)');
  for (const n of m.notes) io.out(`note: ${n}`);
  io.out(`wrote a Triton model repository for "${spec.name}" (onnxruntime backend, dynamic batching, opset ${compiled.opset}${v.fp16 ? ', fp16' : ''}):`);
  for (const f of files) io.out(`  ${f}`);
  io.out(`serve it with: tritonserver --model-repository ${dir}`);
  return 0;
}
