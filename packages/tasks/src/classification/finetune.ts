import { join } from 'node:path';
import {
  canTrain,
  checkNumber,
  claimOutputDir,
  deriveSeed,
  forEachConcurrent,
  seededShuffle,
  EffnetError,
  type EfficientNetSpec,
  getBackend,
  InvalidSpecError,
  buildEfficientNet,
  float32Tensor,
  lastStagesPrefixes,
  randomWeights,
  selectTrainable,
  type Device,
  type StepResult,
  type Tensor,
  type TensorMap,
} from '@effnet/core';
import { loadPretrainedWeights, type Preprocessing } from '@effnet/zoo';
import { augmentForTraining, type RgbImage } from '../data/augment.js';
import { loadImageFolders, type Sample } from '../data/image-folder.js';
import { decodeImage } from '../images/decode.js';
import { preprocess, writeNormalized } from '../images/preprocess.js';
import { loadModelWeights, resolveModel } from '../models/resolve.js';
import { loadCheckpoint, MODEL_CARD_FORMAT, type ModelCard, saveCheckpoint } from './model-card.js';

export type FreezeMode = 'none' | 'backbone' | `stages:${number}`;

export interface FineTuneOptions {
  /** ImageFolder root (a folder per class); with `val`, the training set. */
  data: string;
  /** A separate validation ImageFolder with the same classes; else a seeded split of `data`. */
  val?: string;
  valFraction?: number;
  /** A zoo name (pretrained start), a variant (random start, e.g. efficientnet_phi-4), or a checkpoint to continue from. */
  model: string;
  epochs: number;
  batch?: number;
  lr?: number;
  weightDecay?: number;
  optimizer?: 'adamw' | 'adam' | 'sgd';
  /** 'backbone': train the classifier only; 'stages:K': the last K stages, head and classifier; 'none': everything. */
  freeze?: FreezeMode;
  labelSmoothing?: number;
  /** Input size; default the model's. */
  size?: number;
  /** Eval transform's crop_pct (validation here, and the model card's preprocessing); default the model's. 1 = no crop. */
  cropPct?: number;
  /** Dropout before the classifier and the stochastic depth rate; default the architecture's. */
  dropout?: number;
  dropPath?: number;
  /** RandomResizedCrop scale range (default [0.08, 1], torchvision's). */
  cropScale?: [number, number];
  /** Output directory: model.safetensors + model.json (latest), best.safetensors + best.json (best validation accuracy). */
  out: string;
  /** Continue from out/model.json (weights, epoch and schedule position). */
  resume?: boolean;
  /** Write into `out` even though it holds files (another run's checkpoint is replaced). */
  force?: boolean;
  /** Stop after this many epochs without a better validation accuracy. */
  patience?: number;
  seed?: number;
  device?: Device;
  /** Card name; default the output directory's name. */
  name?: string;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  phase: 'train' | 'val' | 'epoch';
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  loss?: number;
  accuracy?: number;
  lr?: number;
  imagesPerSecond?: number;
  valAccuracy?: number;
  device?: string;
}

export interface FineTuneResult {
  card: ModelCard;
  /** The checkpoint directory. */
  out: string;
  stoppedEarly: boolean;
  history: Record<string, number>[];
}

export class TrainingError extends EffnetError {
  override name = 'TrainingError';
}

interface Start {
  spec: EfficientNetSpec;
  arch: string;
  preprocessing: Preprocessing;
  /** Backbone weights (the classifier is replaced unless `keepHead`). */
  weights: TensorMap | null;
  keepHead: boolean;
  base: string;
  epoch: number;
  step: number;
  history: Record<string, number>[];
}


/** Where training starts: the run being resumed, a checkpoint, a zoo entry's pretrained weights, or a variant's random initialisation. */
async function startingPoint(o: FineTuneOptions, classes: string[]): Promise<Start> {
  if (o.resume) {
    const ck = await loadCheckpoint(o.out).catch((e: Error) => {
      throw new TrainingError(`--resume: no checkpoint to resume in ${o.out} (${e.message}); train without --resume first`);
    });
    if (ck.card.classes.join('\n') !== classes.join('\n'))
      throw new TrainingError(`--resume: the checkpoint's classes (${ck.card.classes.join(', ')}) differ from the dataset's (${classes.join(', ')})`);
    return { spec: ck.card.spec, arch: ck.card.arch, preprocessing: ck.card.preprocessing, weights: ck.weights, keepHead: true, base: ck.card.base, epoch: ck.card.epoch, step: ck.card.step, history: ck.card.history ?? [] };
  }
  const ref = await resolveModel(o.model);
  switch (ref.kind) {
    case 'checkpoint': {
      const ck = await loadCheckpoint(ref.path);
      const same = ck.card.classes.join('\n') === classes.join('\n');
      return { spec: ck.card.spec, arch: ck.card.arch, preprocessing: ck.card.preprocessing, weights: ck.weights, keepHead: same, base: ref.path, epoch: 0, step: 0, history: [] };
    }
    case 'pretrained': {
      if (ref.entry.task === 'detection') throw new TrainingError(`"${o.model}" is a detector (a zoo entry of task detection); effnet train fine-tunes classifiers`);
      const p = await loadPretrainedWeights(ref.entry.name);
      return { spec: p.spec, arch: p.entry.arch, preprocessing: p.entry.preprocessing, weights: p.weights, keepHead: false, base: ref.entry.name, epoch: 0, step: 0, history: [] };
    }
    case 'variant': {
      const m = await loadModelWeights(o.model);
      return { spec: m.spec, arch: ref.row.name, preprocessing: m.preprocessing, weights: null, keepHead: false, base: 'random', epoch: 0, step: 0, history: [] };
    }
    case 'detector':
      throw new TrainingError(`"${o.model}" is a detector; fine-tune detectors with effnet train --task detection`);
  }
}

function trainable(graph: Parameters<typeof selectTrainable>[0], freeze: FreezeMode): string[] {
  if (freeze === 'none') return selectTrainable(graph);
  if (freeze === 'backbone') return selectTrainable(graph, { train: ['classifier'] });
  const m = /^stages:(\d+)$/.exec(freeze);
  if (!m) throw new InvalidSpecError('--freeze', freeze, 'backbone, none, or stages:K (train the last K stages, the head and the classifier)');
  return selectTrainable(graph, { train: lastStagesPrefixes(graph, Number(m[1])) });
}

/** Every numeric option, checked before any work (one helper names the option). */
function checkFineTuneOptions(o: FineTuneOptions): void {
  checkNumber('epochs', o.epochs, { integer: true, min: 1 });
  if (o.batch !== undefined) checkNumber('batch', o.batch, { integer: true, min: 1 });
  if (o.lr !== undefined) checkNumber('lr', o.lr, { above: 0 });
  if (o.weightDecay !== undefined) checkNumber('weightDecay', o.weightDecay, { min: 0 });
  if (o.labelSmoothing !== undefined) checkNumber('labelSmoothing', o.labelSmoothing, { min: 0, below: 1 });
  if (o.size !== undefined) checkNumber('size', o.size, { integer: true, min: 8 });
  if (o.cropPct !== undefined) checkNumber('cropPct', o.cropPct, { above: 0, max: 1 });
  if (o.dropout !== undefined) checkNumber('dropout', o.dropout, { min: 0, below: 1 });
  if (o.dropPath !== undefined) checkNumber('dropPath', o.dropPath, { min: 0, below: 1 });
  if (o.patience !== undefined) checkNumber('patience', o.patience, { integer: true, min: 1 });
  if (o.seed !== undefined) checkNumber('seed', o.seed, { integer: true, min: 0 });
  if (o.valFraction !== undefined) checkNumber('valFraction', o.valFraction, { min: 0, below: 1 });
  if (o.cropScale !== undefined) {
    if (!Array.isArray(o.cropScale) || o.cropScale.length !== 2) throw new InvalidSpecError('cropScale', o.cropScale, 'two numbers [min, max] in (0, 1]');
    for (const v of o.cropScale) checkNumber('cropScale', v, { above: 0, max: 1 });
    if (o.cropScale[0] > o.cropScale[1]) throw new InvalidSpecError('cropScale', o.cropScale, '[min, max] with min <= max');
  }
  if (o.resume && o.force) throw new InvalidSpecError('resume and force', true, 'one of them: --resume continues the run in --out, --force replaces it');
}

/** Decodes every image once; datasets for fine-tuning are small enough to keep in memory as uint8. */
async function decodeAll(samples: readonly Sample[]): Promise<RgbImage[]> {
  const out: RgbImage[] = new Array(samples.length);
  await forEachConcurrent(samples.length, 4, async (i) => {
    out[i] = await decodeImage(samples[i]!.path);
  });
  return out;
}

/**
 * Replaces the classifier for the dataset's classes and trains on a training backend (tfjs), with augmentation
 * (random resized crop, flip), validation each epoch, a checkpoint each epoch and early stopping.
 */
export async function fineTune(o: FineTuneOptions): Promise<FineTuneResult> {
  checkFineTuneOptions(o);
  const seed = o.seed ?? 0;
  const batchSize = o.batch ?? 32;
  const data = await loadImageFolders({ train: o.data, val: o.val, valFraction: o.valFraction ?? 0.1, seed });
  if (data.classes.length < 2)
    throw new TrainingError(`${o.data} holds one class (${data.classes[0]}); a classifier needs at least two class folders`);
  const start = await startingPoint(o, data.classes);
  // Nothing is written before every input has been checked; then the output directory is claimed (or resumed).
  if (!o.resume) await claimOutputDir(o.out, { owner: 'effnet train', force: o.force, flag: '--out', hint: 'pass --resume to continue that run, --force to replace it, or choose another --out' });
  const size = o.size ?? start.preprocessing.inputSize;
  const preprocessing: Preprocessing = { ...start.preprocessing, inputSize: size, ...(o.cropPct !== undefined ? { cropPct: o.cropPct } : {}) };
  const spec: EfficientNetSpec = { ...start.spec, ...(o.dropout !== undefined ? { dropout: o.dropout } : {}), ...(o.dropPath !== undefined ? { dropPathRate: o.dropPath } : {}) };
  const graph = buildEfficientNet(spec, { numClasses: data.classes.length, inputResolution: size });
  const weights: TensorMap = new Map(randomWeights(graph, seed));
  if (start.weights)
    for (const [name, t] of start.weights) if (weights.has(name) && (start.keepHead || !name.startsWith('classifier.'))) weights.set(name, t);
  // A new classifier starts at zero: with few classes, timm's uniform(+-1/sqrt(classes)) init gives logits of several
  // units on the head's features, and the first hundreds of steps go into undoing that.
  if (!start.keepHead) for (const name of ['classifier.weight', 'classifier.bias']) (weights.get(name)!.data as Float32Array).fill(0);

  const backend = await getBackend('tfjs');
  if (!canTrain(backend)) throw new TrainingError('the tfjs backend cannot train; reinstall @effnet/backend-tfjs');
  const stepsPerEpoch = Math.ceil(data.train.length / batchSize);
  const totalSteps = stepsPerEpoch * o.epochs;
  const lr = o.lr ?? (o.freeze === 'backbone' ? 1e-2 : 1e-3);
  const session = await backend.createTrainer(graph, weights, {
    optimizer: { kind: o.optimizer ?? 'adamw', lr, weightDecay: o.weightDecay ?? 0.01 },
    schedule: { kind: 'cosine', totalSteps, warmupSteps: Math.min(Math.ceil(totalSteps * 0.05), 200) },
    labelSmoothing: o.labelSmoothing ?? 0.1,
    clipGradNorm: 5,
    trainable: trainable(graph, o.freeze ?? 'none'),
    freezeBatchNorm: o.freeze === 'backbone',
    seed,
    // The schedule resumes where it stopped (the optimiser's moments restart from zero).
    startStep: start.step,
    device: o.device ?? 'auto',
  });

  const [trainImages, valImages] = await Promise.all([decodeAll(data.train), decodeAll(data.val)]);
  const valTensor = valImages.length ? evalBatch(valImages, preprocessing) : null;
  const history = [...start.history];
  let best = Math.max(-1, ...history.map((h) => h.valAccuracy ?? -1));
  let sinceBest = 0;
  let stoppedEarly = false;
  let card: ModelCard | undefined;
  const plane = 3 * size * size;

  try {
    for (let epoch = start.epoch; epoch < o.epochs; epoch++) {
      const order = seededShuffle(data.train.length, deriveSeed(seed, epoch));
      let lossSum = 0;
      let accSum = 0;
      let seen = 0;
      const t0 = performance.now();
      for (let s = 0; s < stepsPerEpoch; s++) {
        const idx = order.slice(s * batchSize, (s + 1) * batchSize);
        const x = float32Tensor([idx.length, 3, size, size]);
        const labels = new Int32Array(idx.length);
        for (let b = 0; b < idx.length; b++) {
          const i = idx[b]!;
          const aug = await augmentForTraining(trainImages[i]!, { size, seed: deriveSeed(seed, epoch, i), ...(o.cropScale ? { scale: o.cropScale } : {}) });
          writeNormalized(aug, preprocessing, x.data as Float32Array, b * plane);
          labels[b] = data.train[i]!.label;
        }
        const r: StepResult = await session.step(x, labels);
        lossSum += r.loss * idx.length;
        accSum += r.accuracy * idx.length;
        seen += idx.length;
        o.onProgress?.({
          phase: 'train',
          epoch: epoch + 1,
          epochs: o.epochs,
          step: s + 1,
          stepsPerEpoch,
          loss: lossSum / seen,
          accuracy: accSum / seen,
          lr: r.lr,
          imagesPerSecond: seen / ((performance.now() - t0) / 1000),
          device: session.device,
        });
      }
      const valAccuracy = valTensor ? await accuracyOf(session, valTensor, data.val.map((v) => v.label), batchSize) : Number.NaN;
      const row = { epoch: epoch + 1, trainLoss: lossSum / seen, trainAccuracy: accSum / seen, valAccuracy, imagesPerSecond: seen / ((performance.now() - t0) / 1000) };
      history.push(row);
      o.onProgress?.({ phase: 'epoch', epoch: epoch + 1, epochs: o.epochs, step: stepsPerEpoch, stepsPerEpoch, loss: row.trainLoss, accuracy: row.trainAccuracy, valAccuracy, device: session.device });
      card = {
        format: MODEL_CARD_FORMAT,
        name: o.name ?? o.out.split(/[\\/]/).filter(Boolean).at(-1) ?? 'model',
        arch: start.arch,
        spec,
        classes: data.classes,
        preprocessing,
        weights: 'model.safetensors',
        base: start.base,
        seed,
        epoch: epoch + 1,
        step: session.steps,
        training: {
          data: o.data,
          val: o.val ?? `seeded split, valFraction ${o.valFraction ?? 0.1}`,
          trainImages: data.train.length,
          valImages: data.val.length,
          epochs: o.epochs,
          batch: batchSize,
          optimizer: o.optimizer ?? 'adamw',
          lr,
          weightDecay: o.weightDecay ?? 0.01,
          schedule: 'cosine with 5% warmup',
          labelSmoothing: o.labelSmoothing ?? 0.1,
          freeze: o.freeze ?? 'none',
          dropout: spec.dropout,
          dropPath: spec.dropPathRate,
          augmentation: `RandomResizedCrop(${size}, scale=${JSON.stringify(o.cropScale ?? [0.08, 1])}), RandomHorizontalFlip(0.5)`,
          device: session.device,
        },
        metrics: { valAccuracy, trainAccuracy: row.trainAccuracy, trainLoss: row.trainLoss },
        history,
        created: new Date().toISOString(),
      };
      const w = session.weights();
      await saveCheckpoint(o.out, 'model', w, card);
      if (valAccuracy > best) {
        best = valAccuracy;
        sinceBest = 0;
        await saveCheckpoint(o.out, 'best', w, card);
      } else if (o.patience !== undefined && ++sinceBest >= o.patience) {
        stoppedEarly = true;
        break;
      }
    }
  } finally {
    session.dispose();
  }
  if (!card) throw new TrainingError(`nothing to train: the checkpoint in ${o.out} already has ${start.epoch} of ${o.epochs} epochs; raise --epochs`);
  return { card, out: o.out, stoppedEarly, history };
}

function evalBatch(images: readonly RgbImage[], p: Preprocessing): Tensor {
  const size = p.inputSize;
  const x = float32Tensor([images.length, 3, size, size]);
  images.forEach((im, i) => (x.data as Float32Array).set(preprocess(im, p), i * 3 * size * size));
  return x;
}

async function accuracyOf(session: { predict(b: Tensor): Promise<Tensor> }, x: Tensor, labels: number[], batchSize: number): Promise<number> {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const plane = c * h * w;
  let correct = 0;
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const part = float32Tensor([m, c, h, w], (x.data as Float32Array).slice(s * plane, (s + m) * plane));
    const logits = (await session.predict(part)).data as Float32Array;
    const k = logits.length / m;
    for (let i = 0; i < m; i++) {
      let arg = 0;
      for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + arg]!) arg = j;
      if (arg === labels[s + i]) correct++;
    }
  }
  return correct / n;
}
