/**
 * Speed measurement, shared by `effnet bench` and `npm run bench`: warm-up runs, then timed runs of one operation
 * (a network's forward pass, a training step, a whole detection), reported as median and p90 latency, images per
 * second, the process's peak RSS and the device the runtime actually used. A library: nothing is printed.
 */
import { canTrain, float32Tensor, getBackend, InvalidSpecError, type LoadOptions, randomWeights, seededNormal, type Tensor } from '@effnet/core';
import { Detector } from '../detection/detector.js';
import { segmentationLoss } from '../segmentation/finetune.js';
import { Segmenter } from '../segmentation/segmenter.js';
import { loadModelWeights, type ModelWeights, sizeErrorAs } from '../models/resolve.js';
import { loadRunner } from '../models/runner.js';
import { type LatencyStats, latencyStats, peakRssMB, timeRuns } from './timing.js';

export const BENCH_TASKS = ['infer', 'train', 'detect', 'segment'] as const;
export type BenchTask = (typeof BENCH_TASKS)[number];
export const BENCH_PRECISIONS = ['fp32', 'fp16', 'int8'] as const;
export type BenchPrecision = (typeof BENCH_PRECISIONS)[number];

export interface BenchOptions {
  /** Any model name (models/resolve.ts): zoo entry, checkpoint, exported .onnx, variant (random weights). */
  model: string;
  task?: BenchTask;
  batch?: number;
  /** Input side (default the model's own). */
  resolution?: number;
  backend?: 'onnx' | 'tfjs';
  device?: LoadOptions['device'];
  /** fp16 and int8 compile the model so on the onnx backend; an exported .onnx runs at its own precision. */
  precision?: BenchPrecision;
  threads?: number;
  warmup?: number;
  iterations?: number;
  /** Progress over warm-up and timed runs. */
  onProgress?: (done: number, total: number, phase: 'load' | 'run') => void;
}

export interface BenchResult extends LatencyStats {
  model: string;
  task: BenchTask;
  backend: string;
  /** What the runtime actually ran on (e.g. cpu, cuda, wasm), and its notes. */
  device: string;
  notes: string[];
  precision: BenchPrecision;
  batch: number;
  resolution: [number, number];
  threads?: number;
  warmup: number;
  iterations: number;
  /** Each timed run, ms. */
  latenciesMs: number[];
  /** Loading and compiling, ms (the compiled-model cache makes a second load faster). */
  loadMs: number;
  peakRssMB: number;
  randomWeights: boolean;
  machine: { cpu: string; cores: number; node: string; platform: string; loadAverage: number };
}

async function machine(): Promise<BenchResult['machine']> {
  const os = await import('node:os');
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, platform: `${process.platform}-${process.arch}`, loadAverage: os.loadavg()[0]! };
}

function inputBatch(m: ModelWeights, batch: number, seed = 0): Tensor {
  const g = m.graph.inputs[0]!;
  const n = seededNormal(seed);
  return float32Tensor([batch, g.channels, g.height!, g.width!], Float32Array.from({ length: batch * g.channels * g.height! * g.width! }, () => n()));
}

/** Times one model doing one task; see BenchOptions. */
export async function benchmark(o: BenchOptions): Promise<BenchResult> {
  const task = o.task ?? 'infer';
  const batch = o.batch ?? 1;
  const backendName = o.backend ?? 'onnx';
  const warmup = o.warmup ?? 3;
  const iterations = o.iterations ?? (batch === 1 ? 20 : 10);
  const t0 = process.hrtime.bigint();
  // A size the network cannot take (a segmenter's multiple of 32, bifpnseg's of 128) is said of --resolution.
  const m = await loadModelWeights(o.model, { inputResolution: o.resolution }).catch(sizeErrorAs('--resolution', o.resolution));
  if (m.graph.inputs[0]!.height === null) throw new InvalidSpecError('--resolution', o.resolution, 'a size: the model takes any size, so say which to time');
  const precision = o.precision ?? (m.onnx?.precision as BenchPrecision | undefined) ?? 'fp32';
  if (m.onnx && precision !== m.onnx.precision)
    throw new InvalidSpecError('--precision', precision, `${m.onnx.precision}, the precision ${o.model} was exported at (export it again with ${precision === 'fp32' ? 'neither --fp16 nor --int8' : `--${precision}`})`);
  if (!m.onnx && precision === 'int8') throw new InvalidSpecError('--precision', precision, `fp32 or fp16 for a model compiled here; for int8, export it first (effnet export ${o.model} --int8 --calibration DIR -o m.onnx) and bench the file`);
  if (precision === 'fp16' && backendName !== 'onnx') throw new InvalidSpecError('--precision', precision, 'fp32 on the tfjs backend (fp16 is an ONNX export)');
  const load = { backend: backendName, device: o.device ?? (backendName === 'onnx' ? 'cpu' : 'auto'), ...(o.threads ? { threads: o.threads } : {}), ...(precision === 'fp16' && !m.onnx ? { fp16: true } : {}) } as LoadOptions & { backend: string };
  const x = inputBatch(m, batch);
  let run: () => Promise<unknown>;
  let device: string;
  let notes: string[];
  let release: () => Promise<void> | void;
  switch (task) {
    case 'infer': {
      const runner = await loadRunner(m, load);
      run = () => runner.run(x);
      ({ device } = runner);
      notes = [...m.notes, ...runner.notes];
      release = () => runner.dispose();
      break;
    }
    case 'detect': {
      if (!m.detector) throw new InvalidSpecError('--task', task, `infer or train: ${o.model} is a classifier`);
      if (precision === 'fp16' && !m.onnx) throw new InvalidSpecError('--precision', precision, 'fp32 for --task detect (export the detector with --fp16 and bench the file)');
      const detector = await Detector.fromModel(m, { ...load, backend: backendName });
      const images = Array.from({ length: batch }, (_, i) => ({ ...x, shape: x.shape.slice(1), data: (x.data as Float32Array).subarray(i * (x.data.length / batch), (i + 1) * (x.data.length / batch)) }));
      run = () => detector.detect(images, { batchSize: batch, score: 0.05 });
      ({ device } = detector);
      notes = [...m.notes, ...detector.runner.notes];
      release = () => detector.dispose();
      break;
    }
    case 'segment': {
      if (!m.segmenter) throw new InvalidSpecError('--task', task, `infer or train: ${o.model} is a ${m.detector ? 'detector (--task detect)' : 'classifier'}`);
      if (precision === 'fp16' && !m.onnx) throw new InvalidSpecError('--precision', precision, 'fp32 for --task segment (export the segmenter with --fp16 and bench the file)');
      const [h, w] = [m.graph.inputs[0]!.height!, m.graph.inputs[0]!.width!];
      if (h !== w) throw new InvalidSpecError('--resolution', [h, w], 'a square input for --task segment');
      const segmenter = await Segmenter.fromModel(m, { ...load, backend: backendName, batchSize: batch });
      // Images at the input's size: the timed work is preprocessing, the network, the resize of the logits and the argmax.
      const rand = seededNormal(1);
      const images = Array.from({ length: batch }, () => ({ width: w, height: h, data: Uint8Array.from({ length: h * w * 3 }, () => Math.max(0, Math.min(255, 128 + 60 * rand()))) }));
      run = () => segmenter.segmentImages(images);
      ({ device } = segmenter);
      notes = [...m.notes];
      release = () => segmenter.dispose();
      break;
    }
    case 'train': {
      if (m.onnx) throw new InvalidSpecError('--model', o.model, 'a checkpoint, zoo entry or variant: an exported .onnx holds inference weights only');
      if (m.detector) throw new InvalidSpecError('--task', task, 'infer or detect: training throughput is measured for classifiers and segmenters');
      const backend = await getBackend(backendName);
      if (!canTrain(backend)) throw new InvalidSpecError('--backend', backendName, 'a backend that trains (onnx or tfjs)');
      const weights = m.random ? randomWeights(m.graph, 0) : m.weights;
      const numClasses = Number(m.graph.metadata.numClasses ?? 1000);
      // Segmenters train on per-pixel labels with their cross-entropy (ignore 255); classifiers on one label per image.
      const loss = m.segmenter ? segmentationLoss('ce') : undefined;
      const trainer = await backend.createTrainer(m.graph, weights, { ...load, optimizer: { kind: 'sgd', lr: 1e-3, momentum: 0.9 }, ...(loss ? { loss } : {}) });
      if (m.segmenter) {
        const [h, w] = [m.graph.inputs[0]!.height!, m.graph.inputs[0]!.width!];
        const labels = BigInt64Array.from({ length: batch * h * w }, (_, i) => BigInt(i % numClasses));
        const targets = { labels: { dtype: 'int64' as const, shape: [batch, h, w], data: labels } };
        run = () => trainer.stepWith(x, targets);
      } else {
        const labels = Int32Array.from({ length: batch }, (_, i) => i % numClasses);
        run = () => trainer.step(x, labels);
      }
      ({ device } = trainer);
      notes = [...m.notes, ...trainer.notes];
      release = () => trainer.dispose();
      break;
    }
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  o.onProgress?.(0, warmup + iterations, 'load');
  try {
    const latenciesMs = await timeRuns(run, { warmup, iterations, onRun: (d, t) => o.onProgress?.(d, t, 'run') });
    const g = m.graph.inputs[0]!;
    return {
      model: o.model,
      task,
      backend: backendName,
      device,
      notes,
      precision,
      batch,
      resolution: [g.height!, g.width!],
      ...(o.threads ? { threads: o.threads } : {}),
      warmup,
      iterations,
      ...latencyStats(latenciesMs, batch),
      latenciesMs,
      loadMs,
      peakRssMB: peakRssMB(),
      randomWeights: m.random,
      machine: await machine(),
    };
  } finally {
    await release();
  }
}
