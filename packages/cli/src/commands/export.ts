import { basename, dirname, join } from 'node:path';
import { analyzeGraph, checkOutputFile, writeFileAtomic } from '@effnet/core';
import { defineCommand, UsageError } from '../args.js';
import { exportTriton } from './export-triton.js';
import { FORCE_OPTION, MODEL_HELP, MODEL_OPTIONS } from './common.js';

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'a model as a self-describing ONNX file (usable as --model), or a Triton model repository',
  usage: 'effnet export <model> -o model.onnx [options]   |   effnet export <model> --triton DIR [options]',
  positionals: { name: '<model>', description: 'checkpoint, variant or zoo entry', min: 1, max: 1 },
  options: {
    ...MODEL_OPTIONS,
    output: { type: 'string', short: 'o', valueName: 'FILE', description: 'the .onnx file to write' },
    triton: { type: 'string', valueName: 'DIR', description: 'write a Triton model repository instead: DIR/<name>/1/model.onnx, config.pbtxt, labels.txt (<model> may be NAME=M)' },
    opset: { type: 'number', integer: true, min: 13, max: 21, valueName: 'N', description: 'ONNX opset (default 17)' },
    fp16: { type: 'boolean', description: 'float16 weights and compute (float32 in and out)' },
    'no-fold': { type: 'boolean', description: 'keep BatchNorm nodes instead of folding them into the convs' },
    resolution: { type: 'number', integer: true, min: 1, max: 8192, valueName: 'N', description: "a static N x N input (default: the model's own size, a checkpoint's trained size)" },
    dynamic: { type: 'boolean', description: 'any input size (height and width are dynamic axes)' },
    nms: { type: 'boolean', description: 'a detector with its post-processing in the graph: outputs boxes, scores, classes, num_detections' },
    score: { type: 'number', min: 0, max: 0.999, valueName: 'S', description: 'with --nms: keep detections scoring above S (default 0.05)' },
    max: { type: 'number', integer: true, min: 1, max: 5000, valueName: 'K', description: 'with --nms: K detections per image (default 100)' },
    ...FORCE_OPTION,
  },
  notes: [MODEL_HELP],
  examples: ['effnet export efficientnet_b0.ra_in1k -o b0.onnx', 'effnet export runs/shapes -o shapes.onnx --dynamic', 'effnet export tf_efficientdet_d0.coco --nms -o det.onnx', 'effnet export effnet-shapes --triton model_repository'],
  async run({ values: v, positionals }, io) {
    const [{ loadModelWeights, detectionNmsExtension, onnxExportMetadata }, { compileToOnnx }] = await Promise.all([import('@effnet/tasks'), import('@effnet/backend-onnx')]);
    if (v.dynamic && v.resolution !== undefined) throw new UsageError('effnet export: --resolution and --dynamic exclude each other');
    if ((v.output === undefined) === (v.triton === undefined)) throw new UsageError('effnet export needs one of -o FILE (an .onnx file) or --triton DIR (a Triton model repository); see effnet export --help');
    if (v.output === undefined) return exportTriton(positionals[0]!, v.triton!, v, io);
    if (!v.nms && (v.score !== undefined || v.max !== undefined)) throw new UsageError('effnet export: --score and --max go with --nms');
    if (v.nms && v.dynamic) throw new UsageError('effnet export: --nms needs a fixed input size (its anchors are constants); leave out --dynamic');
    await checkOutputFile(v.output, { force: v.force, flag: '-o' });
    const m = await loadModelWeights(positionals[0]!, { weights: v.weights, weightsFormat: v['weights-format'], weightsKey: v['weights-key'], inputResolution: v.dynamic ? null : v.resolution });
    if (m.onnx) throw new UsageError(`effnet export: "${positionals[0]}" is already an ONNX file; export the checkpoint or zoo entry it came from`);
    if (v.nms && !m.detector) throw new UsageError(`effnet export: --nms is for detectors; "${positionals[0]}" is a classifier`);
    const dataFile = `${basename(v.output)}.data`;
    const compiled = compileToOnnx(m.graph, m.weights, {
      opset: v.opset,
      fp16: v.fp16,
      foldBatchNorm: !v['no-fold'],
      externalDataLocation: dataFile,
      metadata: onnxExportMetadata(m, { file: v.output, precision: v.fp16 ? 'fp16' : 'fp32', nms: v.nms }),
      ...(v.nms ? { extend: detectionNmsExtension(m.graph, { scoreThreshold: v.score, maxDetections: v.max }) } : {}),
    });
    if (compiled.externalData) {
      await checkOutputFile(join(dirname(v.output), compiled.externalData.location), { force: v.force, flag: '-o (its external data)' });
      await writeFileAtomic(join(dirname(v.output), compiled.externalData.location), compiled.externalData.bytes);
    }
    await writeFileAtomic(v.output, compiled.model);
    const input = m.graph.inputs[0]!;
    if (m.random) io.out('note: no --weights given, so the model has a random initialisation (for architecture work, not predictions)');
    for (const n of m.notes) io.out(`note: ${n}`);
    io.out(`wrote ${v.output} (${(compiled.model.length / 1e6).toFixed(1)} MB${compiled.externalData ? ` + ${compiled.externalData.location}` : ''}), opset ${compiled.opset}${v.fp16 ? ', fp16' : ''}`);
    io.out(`input "${compiled.inputName}" [batch, ${input.channels}, ${input.height ?? 'height'}, ${input.width ?? 'width'}] float32 NCHW; output ${compiled.outputNames.map((n) => `"${n}"`).join(', ')}`);
    if (input.height !== null) io.out(`${analyzeGraph(m.graph).params.toLocaleString('en-US')} params`);
    return 0;
  },
});
