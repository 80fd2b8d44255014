import { basename, dirname, join } from 'node:path';
import { analyzeGraph, checkOutputFile, EffnetError, writeFileAtomic } from '@effnet/core';
import type { ModelWeights } from '@effnet/tasks';
import { defineCommand, type Io, UsageError } from '../args.js';
import { redraw } from '../progress.js';
import { groupThousands } from '../table.js';
import { expandImagePaths } from './classify.js';
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
    fp16: { type: 'boolean', description: 'float16 weights and compute (float32 in and out): for GPUs; slower than fp32 on CPUs' },
    int8: { type: 'boolean', description: 'static int8 quantization (QDQ: int8 per-channel weights, uint8 activations), calibrated on --calibration images' },
    calibration: { type: 'string', valueName: 'DIR', description: "with --int8: images (searched recursively) run through the model's own preprocessing to calibrate activation ranges" },
    calibrate: { type: 'string', choices: ['minmax', 'percentile', 'entropy'], valueName: 'METHOD', description: 'with --int8: how ranges are chosen (default minmax; percentile keeps 99.999% of |x|; entropy: least KL divergence)' },
    'calibration-images': { type: 'number', integer: true, min: 1, max: 100000, valueName: 'N', description: 'with --int8: use at most N images of --calibration (default 128)' },
    'no-fold': { type: 'boolean', description: 'keep BatchNorm nodes instead of folding them into the convs' },
    resolution: { type: 'number', integer: true, min: 1, max: 8192, valueName: 'N', description: "a static N x N input (default: the model's own size, a checkpoint's trained size)" },
    dynamic: { type: 'boolean', description: 'any input size (height and width are dynamic axes)' },
    nms: { type: 'boolean', description: 'a detector with its post-processing in the graph: outputs boxes, scores, classes, num_detections' },
    score: { type: 'number', min: 0, max: 0.999, valueName: 'S', description: 'with --nms: keep detections scoring above S (default 0.05)' },
    max: { type: 'number', integer: true, min: 1, max: 5000, valueName: 'K', description: 'with --nms: K detections per image (default 100)' },
    ...FORCE_OPTION,
  },
  notes: [MODEL_HELP],
  examples: ['effnet export efficientnet_b0.ra_in1k -o b0.onnx', 'effnet export runs/shapes --int8 --calibration shapes/ -o shapes-int8.onnx', 'effnet export runs/shapes -o shapes.onnx --dynamic', 'effnet export tf_efficientdet_d0.coco --nms -o det.onnx', 'effnet export effnet-shapes --triton model_repository'],
  async run({ values: v, positionals }, io) {
    const [{ loadModelWeights, detectionNmsExtension, onnxExportMetadata }, { compileToOnnx }] = await Promise.all([import('@effnet/tasks'), import('@effnet/backend-onnx')]);
    if (v.dynamic && v.resolution !== undefined) throw new UsageError('effnet export: --resolution and --dynamic exclude each other');
    if ((v.output === undefined) === (v.triton === undefined)) throw new UsageError('effnet export needs one of -o FILE (an .onnx file) or --triton DIR (a Triton model repository); see effnet export --help');
    if (v.output === undefined) return exportTriton(positionals[0]!, v.triton!, v, io);
    if (!v.nms && (v.score !== undefined || v.max !== undefined)) throw new UsageError('effnet export: --score and --max go with --nms');
    if (!v.int8 && (v.calibration !== undefined || v.calibrate !== undefined || v['calibration-images'] !== undefined)) throw new UsageError('effnet export: --calibration, --calibrate and --calibration-images go with --int8');
    if (v.int8 && v.calibration === undefined) throw new UsageError('effnet export --int8 needs --calibration DIR: representative images to calibrate activation ranges');
    if (v.int8 && (v.fp16 || v.nms || v['no-fold'])) throw new UsageError('effnet export: --int8 excludes --fp16, --nms and --no-fold');
    if (v.nms && v.dynamic) throw new UsageError('effnet export: --nms needs a fixed input size (its anchors are constants); leave out --dynamic');
    await checkOutputFile(v.output, { force: v.force, flag: '-o' });
    const m = await loadModelWeights(positionals[0]!, { weights: v.weights, weightsFormat: v['weights-format'], weightsKey: v['weights-key'], inputResolution: v.dynamic ? null : v.resolution });
    if (m.onnx) throw new UsageError(`effnet export: "${positionals[0]}" is already an ONNX file; export the checkpoint or zoo entry it came from`);
    if (v.nms && !m.detector) throw new UsageError(`effnet export: --nms is for detectors; "${positionals[0]}" is a classifier`);
    const int8 = v.int8 ? await calibrate(m, v.calibration!, { method: v.calibrate ?? 'minmax', max: v['calibration-images'] ?? 128 }, io) : undefined;
    const dataFile = `${basename(v.output)}.data`;
    const compiled = compileToOnnx(m.graph, m.weights, {
      ...(int8 ? { int8: { ranges: int8.ranges } } : {}),
      opset: v.opset,
      fp16: v.fp16,
      foldBatchNorm: !v['no-fold'],
      externalDataLocation: dataFile,
      metadata: onnxExportMetadata(m, { file: v.output, precision: v.int8 ? 'int8' : v.fp16 ? 'fp16' : 'fp32', nms: v.nms, ...(int8 ? { extra: { 'effnet.calibration': JSON.stringify(int8.facts) } } : {}) }),
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
    io.out(`wrote ${v.output} (${(compiled.model.length / 1e6).toFixed(1)} MB${compiled.externalData ? ` + ${compiled.externalData.location}` : ''}), opset ${compiled.opset}${v.fp16 ? ', fp16' : ''}${int8 ? `, int8 (calibrated on ${int8.facts.images} images, ${int8.facts.method})` : ''}`);
    io.out(`input "${compiled.inputName}" [batch, ${input.channels}, ${input.height ?? 'height'}, ${input.width ?? 'width'}] float32 NCHW; output ${compiled.outputNames.map((n) => `"${n}"`).join(', ')}`);
    if (input.height !== null) io.out(`${groupThousands(analyzeGraph(m.graph).params)} params`);
    return 0;
  },
});

/** int8 calibration: images from `dir` through the model's own preprocessing, observed on the float32 model. */
async function calibrate(m: ModelWeights, dir: string, o: { method: string; max: number }, io: Io): Promise<{ ranges: Record<string, [number, number]>; facts: { method: string; images: number; activations: string; dir: string } }> {
  const [{ preprocessBatch }, { calibrateInt8 }] = await Promise.all([import('@effnet/tasks'), import('@effnet/backend-onnx')]);
  if (m.detector) throw new UsageError('effnet export: --int8 is for classifiers in this version (a detector\'s letterbox preprocessing is not wired to calibration yet)');
  const h = m.graph.inputs[0]!.height;
  if (h === null) throw new UsageError('effnet export: --int8 needs a fixed input size; leave out --dynamic');
  const files = (await expandImagePaths([dir])).slice(0, o.max);
  if (!files.length) throw new EffnetError(`--calibration ${dir}: no JPEG, PNG or WebP images in it`);
  const preprocessing = { ...m.preprocessing, inputSize: h };
  const batch = 8;
  const batches = Math.ceil(files.length / batch);
  async function* tensors() {
    for (let s = 0; s < files.length; s += batch) yield (await preprocessBatch(files.slice(s, s + batch), preprocessing)).tensor;
  }
  const ranges = await calibrateInt8(m.graph, m.weights, tensors, {
    method: o.method as never,
    onBatch: (i, pass, passes) => {
      const text = `calibrating on ${files.length} images: pass ${pass + 1}/${passes}, batch ${i}/${batches}`;
      if (io.progress.isTTY) redraw(io.progress, `${text}${i === batches && pass + 1 === passes ? '\n' : ''}`);
      else if (i === batches) io.progress.write(`${text}\n`);
    },
  });
  return { ranges, facts: { method: o.method, images: files.length, activations: 'uint8', dir: basename(dir) } };
}
