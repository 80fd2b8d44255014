import { join } from 'node:path';
import {
  buildEfficientNet,
  checkNumber,
  claimOutputDir,
  deriveSeed,
  type EfficientNetSpec,
  float32Tensor,
  forEachConcurrent,
  InvalidSpecError,
  lastStagesPrefixes,
  randomWeights,
  selectTrainable,
  type Tensor,
  type ScheduleConfig,
  seededShuffle,
  type TensorMap,
  type TrainSession,
} from '@effnet/core';
import { loadPretrainedWeights, type Preprocessing } from '@effnet/zoo';
import { augmentForTraining, type RgbImage } from '../data/augment.js';
import { loadImageFolders, type Sample } from '../data/image-folder.js';
import { decodeImage } from '../images/decode.js';
import { preprocess, writeNormalized } from '../images/preprocess.js';
import { loadModelWeights, resolveModel } from '../models/resolve.js';
import { lineChartPng } from '../render/lines.js';
import { checkpointStart, defaultTrainingDevice, freshStart, lastCard, onnxNotTrainable, runCardFields, type RunStart, runTrainingLoop, saveEpoch, TrainingError, trainingBackend, type TrainingRunOptions, type TrainingRunResult } from '../training/loop.js';
import { checkRecipeOptions, type Recipe, type RecipeOptions, resolveRecipe, resumedRecipeOptions, trainerSettings } from '../training/recipe.js';
import type { ModelCard } from './model-card.js';

export { TrainingError, type TrainProgress } from '../training/loop.js';

export type FreezeMode = 'none' | 'backbone' | `stages:${number}`;

export interface FineTuneOptions extends RecipeOptions, TrainingRunOptions {
  /** ImageFolder root (a folder per class); with `val`, the training set. */
  data: string;
  /** A separate validation ImageFolder with the same classes; else a seeded split of `data`. */
  val?: string;
  valFraction?: number;
  /** A zoo name (pretrained start), a variant (random start, e.g. efficientnet_phi-4), or a checkpoint to continue from. */
  model: string;
  /** 'backbone': train the classifier only; 'stages:K': the last K stages, head and classifier; 'none': everything. */
  freeze?: FreezeMode;
  /** Input size; default the model's. */
  size?: number;
  /** Eval transform's crop_pct (validation here, and the model card's preprocessing); default the model's. 1 = no crop. */
  cropPct?: number;
  /** Dropout before the classifier and the stochastic depth rate; default the architecture's. */
  dropout?: number;
  dropPath?: number;
  /** Called once, before the first step, with the recipe in effect (the CLI prints it). */
  onRecipe?: (recipe: Recipe) => void;
}

export type FineTuneResult = TrainingRunResult;

interface Start extends RunStart {
  spec: EfficientNetSpec;
  arch: string;
}

/** Where training starts: the run being resumed, a checkpoint, a zoo entry's pretrained weights, or a variant's random initialisation. */
async function startingPoint(o: FineTuneOptions, classes: string[]): Promise<Start> {
  const fromCheckpoint = async (path: string, resume: boolean): Promise<Start> => {
    const { checkpoint, start } = await checkpointStart(path, { task: 'classification', classes, resume, hint: `effnet train fine-tunes classifiers (--task detection or segmentation train the others)` });
    return { ...start, spec: checkpoint.card.spec, arch: checkpoint.card.arch };
  };
  if (o.resume) return fromCheckpoint(o.out, true);
  const ref = await resolveModel(o.model);
  switch (ref.kind) {
    case 'onnx':
      throw onnxNotTrainable(o.model);
    case 'checkpoint':
      return fromCheckpoint(ref.path, false);
    case 'pretrained': {
      if (ref.entry.task === 'detection') throw new TrainingError(`"${o.model}" is a detector (a zoo entry of task detection); effnet train fine-tunes classifiers`);
      const p = await loadPretrainedWeights(ref.entry.name);
      return { ...freshStart(p.entry.preprocessing, p.weights, ref.entry.name), spec: p.spec, arch: p.entry.arch };
    }
    case 'variant': {
      const m = await loadModelWeights(o.model);
      return { ...freshStart(m.preprocessing, null, 'random'), spec: m.spec, arch: ref.row.name };
    }
    case 'detector':
      throw new TrainingError(`"${o.model}" is a detector; fine-tune detectors with effnet train --task detection`);
    case 'segmenter':
      throw new TrainingError(`"${o.model}" is a segmenter; train segmenters with effnet train --task segmentation`);
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
  if (o.size !== undefined) checkNumber('size', o.size, { integer: true, min: 8 });
  if (o.cropPct !== undefined) checkNumber('cropPct', o.cropPct, { above: 0, max: 1 });
  if (o.dropout !== undefined) checkNumber('dropout', o.dropout, { min: 0, below: 1 });
  if (o.dropPath !== undefined) checkNumber('dropPath', o.dropPath, { min: 0, below: 1 });
  if (o.patience !== undefined) checkNumber('patience', o.patience, { integer: true, min: 1 });
  if (o.seed !== undefined) checkNumber('seed', o.seed, { integer: true, min: 0 });
  if (o.valFraction !== undefined) checkNumber('valFraction', o.valFraction, { min: 0, below: 1 });
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

/** Everything a classification run needs before its first step: data, starting point, graph, weights. */
interface PreparedRun {
  data: Awaited<ReturnType<typeof loadImageFolders>>;
  start: Start;
  size: number;
  preprocessing: Preprocessing;
  spec: EfficientNetSpec;
  graph: ReturnType<typeof buildEfficientNet>;
  weights: TensorMap;
  freeze: FreezeMode;
  seed: number;
  batchSize: number;
  stepsPerEpoch: number;
  recipe: Recipe;
}

/** Checks every input, reads the data and the starting point, builds the graph for the dataset's classes. Writes nothing. */
async function prepareRun(o: FineTuneOptions): Promise<PreparedRun> {
  checkFineTuneOptions(o);
  checkRecipeOptions(o);
  const seed = o.seed ?? 0;
  const batchSize = o.batch ?? 32;
  const data = await loadImageFolders({ train: o.data, val: o.val, valFraction: o.valFraction ?? 0.1, seed });
  if (data.classes.length < 2)
    throw new TrainingError(`${o.data} holds one class (${data.classes[0]}); a classifier needs at least two class folders`);
  const start = await startingPoint(o, data.classes);
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
  const stepsPerEpoch = Math.ceil(data.train.length / batchSize);
  const freeze = o.freeze ?? 'none';
  const recipe = resolveRecipe(o.resume ? resumedRecipeOptions(start.recipe, o) : o, { imageSize: size, trainImages: data.train.length, stepsPerEpoch, epochs: o.epochs, pretrained: start.weights !== null, frozenBackbone: freeze === 'backbone' });
  return { data, start, size, preprocessing, spec, graph, weights, freeze, seed, batchSize, stepsPerEpoch, recipe };
}

/** A training session for a prepared run, with the recipe's optimizer and `schedule` (default the recipe's). */
async function openSession(o: FineTuneOptions, r: PreparedRun, schedule?: ScheduleConfig): Promise<{ session: TrainSession; backend: string }> {
  const backendName = o.backend ?? 'auto';
  const backend = await trainingBackend(backendName);
  const settings = trainerSettings(r.recipe, r.stepsPerEpoch * o.epochs);
  const session = await backend.createTrainer(r.graph, r.weights, {
    ...settings,
    ...(schedule ? { schedule } : {}),
    labelSmoothing: r.recipe.labelSmoothing,
    clipGradNorm: 5,
    trainable: trainable(r.graph, r.freeze),
    freezeBatchNorm: r.freeze === 'backbone',
    seed: r.seed,
    // The schedule resumes where it stopped (the optimiser's moments restart from zero).
    startStep: schedule ? 0 : r.start.step,
    device: o.device ?? defaultTrainingDevice(backendName),
  });
  return { session, backend: backend.name };
}

/** Augmented, normalized training batches of a prepared run (classification: int64 labels). */
function batchMaker(r: PreparedRun, trainImages: RgbImage[]) {
  const plane = 3 * r.size * r.size;
  return async (indices: number[], epoch: number) => {
    const x = float32Tensor([indices.length, 3, r.size, r.size]);
    const labels = new BigInt64Array(indices.length);
    await forEachConcurrent(indices.length, 2, async (b) => {
      const i = indices[b]!;
      const aug = await augmentForTraining(trainImages[i]!, { size: r.size, seed: deriveSeed(r.seed, epoch, i), scale: r.recipe.cropScale, hflip: r.recipe.flip ? 0.5 : 0 });
      writeNormalized(aug, r.preprocessing, x.data as Float32Array, b * plane);
      labels[b] = BigInt(r.data.train[i]!.label);
    });
    return { input: x, targets: { labels: { dtype: 'int64' as const, shape: [indices.length], data: labels } } };
  };
}

/**
 * Replaces the classifier for the dataset's classes and trains (on ONNX Runtime by default) with a recipe that fits
 * the data (every choice the user's to override), validation each epoch, a checkpoint each epoch, training curves
 * and early stopping.
 */
export async function fineTune(o: FineTuneOptions): Promise<FineTuneResult> {
  const r = await prepareRun(o);
  const { data, start, spec, preprocessing, recipe, seed, batchSize } = r;
  // Nothing is written before every input has been checked; then the output directory is claimed (or resumed).
  if (!o.resume) await claimOutputDir(o.out, { owner: 'effnet train', force: o.force, flag: '--out', hint: 'pass --resume to continue that run, --force to replace it, or choose another --out', ignore: [LR_FINDER_PLOT] });
  o.onRecipe?.(recipe);
  const { session, backend } = await openSession(o, r);
  const [trainImages, valImages] = await Promise.all([decodeAll(data.train), decodeAll(data.val)]);
  const valTensor = valImages.length ? evalBatch(valImages, preprocessing) : null;
  let card: ModelCard | undefined;
  const cardFor = (row: Record<string, number>, history: Record<string, number>[]): ModelCard => ({
    ...runCardFields({
      name: o.name,
      out: o.out,
      fallbackName: 'model',
      base: start.base,
      seed,
      steps: session.steps,
      row,
      history,
      data: o.data,
      val: o.val,
      valFraction: o.valFraction,
      trainImages: data.train.length,
      valImages: data.val.length,
      epochs: o.epochs,
      batch: batchSize,
      backend,
      device: session.device,
      freeze: r.freeze,
      extra: { dropout: spec.dropout, dropPath: spec.dropPathRate },
      recipe,
    }),
    arch: start.arch,
    spec,
    classes: data.classes,
    preprocessing,
    metrics: { valAccuracy: row.valAccuracy ?? Number.NaN, trainAccuracy: row.trainAccuracy ?? Number.NaN, trainLoss: row.trainLoss! },
  });

  const history = [...start.history];
  let result: Awaited<ReturnType<typeof runTrainingLoop>>;
  try {
    result = await runTrainingLoop({
      session,
      size: data.train.length,
      batchSize,
      epochs: o.epochs,
      startEpoch: start.epoch,
      seed,
      history: start.history,
      patience: o.patience,
      metric: 'valAccuracy',
      onProgress: o.onProgress,
      batch: batchMaker(r, trainImages),
      validate: async (s) => ({ valAccuracy: valTensor ? await accuracyOf(s, valTensor, data.val.map((v) => v.label), batchSize) : Number.NaN }),
      async save(row, best) {
        history.push(row);
        card = cardFor(row, history);
        await saveEpoch(o.out, session.weights(), card, best, history, ['valAccuracy', 'trainAccuracy']);
      },
    });
  } finally {
    session.dispose();
  }
  return { card: lastCard(card, o.out, start.epoch, o.epochs), out: o.out, stoppedEarly: result.stoppedEarly, history: result.history, recipe };
}

/** The range test's plot in a run directory; a later `effnet train` into the same --out keeps it. */
export const LR_FINDER_PLOT = 'lr-finder.png';

export interface LrFinderOptions {
  /** Steps of the range test (default 100, at most one pass over the data is not required). */
  steps?: number;
  /** Rates tried, geometrically from `minLr` to `maxLr` (default 1e-7 to 1). */
  minLr?: number;
  maxLr?: number;
  /** Where to write lr-finder.png (default the run's --out directory). */
  plot?: string;
}

export interface LrFinderResult {
  /** [learning rate, smoothed loss] per step, until the loss diverged. */
  points: [number, number][];
  /** The rate where the smoothed loss falls fastest (as Lightning's lr_find suggests). */
  suggested: number;
  plot: string;
  recipe: Recipe;
}

/**
 * A learning-rate range test (Smith 2017, as fastai's and Lightning's lr_find): train from the run's starting point
 * with the rate rising geometrically, record the loss (exponentially smoothed), stop when it diverges, and suggest
 * the rate of the steepest descent. Nothing is saved but the plot.
 */
export async function findLearningRate(o: FineTuneOptions & LrFinderOptions): Promise<LrFinderResult> {
  const steps = o.steps ?? 100;
  const minLr = o.minLr ?? 1e-7;
  const maxLr = o.maxLr ?? 1;
  checkNumber('steps', steps, { integer: true, min: 5, max: 100_000 });
  checkNumber('minLr', minLr, { above: 0 });
  checkNumber('maxLr', maxLr, { above: minLr });
  const r = await prepareRun({ ...o, lr: minLr });
  const plot = o.plot ?? join(o.out, LR_FINDER_PLOT);
  if (!o.plot) await claimOutputDir(o.out, { owner: 'effnet train --find-lr', force: o.force, flag: '--out', ignore: [LR_FINDER_PLOT] });
  const { session } = await openSession({ ...o, lr: minLr }, r, { kind: 'exponential', steps, endLr: maxLr });
  const trainImages = await decodeAll(r.data.train);
  const makeBatch = batchMaker(r, trainImages);
  const points: [number, number][] = [];
  let avg = 0;
  let best = Infinity;
  try {
    for (let step = 0, epoch = 0; step < steps; epoch++) {
      const order = seededShuffle(r.data.train.length, deriveSeed(r.seed, epoch, 0x1f));
      for (let s = 0; s < r.stepsPerEpoch && step < steps; s++, step++) {
        const b = await makeBatch(order.slice(s * r.batchSize, (s + 1) * r.batchSize), epoch);
        const res = await session.stepWith(b.input, b.targets);
        avg = 0.98 * avg + 0.02 * res.loss;
        const smoothed = avg / (1 - 0.98 ** (step + 1));
        if (!Number.isFinite(smoothed) || (step > 10 && smoothed > 4 * best)) step = steps;
        else {
          points.push([res.lr, smoothed]);
          best = Math.min(best, smoothed);
        }
        o.onProgress?.({ phase: 'train', epoch: 1, epochs: 1, step: Math.min(step + 1, steps), stepsPerEpoch: steps, loss: smoothed, lr: res.lr, device: session.device });
      }
    }
  } finally {
    session.dispose();
  }
  const suggested = steepestDescent(points);
  await lineChartPng([{ title: 'learning-rate range test', xLabel: 'learning rate', yLabel: 'loss (smoothed)', logX: true, series: [{ name: 'loss', points }], markX: { x: suggested, label: `suggested ${suggested.toExponential(1)}` } }], plot);
  return { points, suggested, plot, recipe: r.recipe };
}

/** The rate at which the loss falls fastest (the most negative slope against log lr), skipping the noisy ends. */
export function steepestDescent(points: readonly (readonly [number, number])[]): number {
  if (points.length < 3) throw new TrainingError(`the range test stopped after ${points.length} steps: the loss diverged at once; lower --min-lr or check the data`);
  const skip = Math.floor(points.length * 0.1);
  let bestSlope = Infinity;
  let at = points[0]![0];
  for (let i = Math.max(1, skip); i < points.length - Math.max(1, Math.floor(skip / 2)); i++) {
    const [l0, y0] = points[i - 1]!;
    const [l1, y1] = points[i]!;
    const slope = (y1 - y0) / (Math.log(l1) - Math.log(l0));
    if (slope < bestSlope) {
      bestSlope = slope;
      at = l1;
    }
  }
  return at;
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
