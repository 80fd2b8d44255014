/**
 * The one training loop every task runs (classification, detection, segmentation): seeded shuffles per epoch,
 * batches built by the task, a step on a TrainingBackend's session, progress with images/s, validation each epoch,
 * a checkpoint each epoch (and `best` on a better validation metric), early stopping. Tasks differ only in how a
 * batch is built, what the loss is (given to the session) and how validation scores.
 */
import { join } from 'node:path';
import { canTrain, deriveSeed, type Device, EffnetError, getBackend, seededShuffle, type Tensor, type TensorMap, type TrainingBackend, type TrainSession } from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';
import { type LoadedCheckpoint, loadCheckpoint, MODEL_CARD_FORMAT, type ModelCard, saveCheckpoint } from '../classification/model-card.js';
import { lineChartPng, trainingCurvePanels } from '../render/lines.js';
import { describeRecipe, type Recipe } from './recipe.js';

export class TrainingError extends EffnetError {
  override name = 'TrainingError';
}

/** Where training runs: 'auto' is ONNX Runtime (on this kind of machine it trains about 20x faster than tfjs wasm). */
export type TrainingBackendName = 'auto' | 'onnx' | 'tfjs';
export const TRAINING_BACKENDS: readonly TrainingBackendName[] = ['auto', 'onnx', 'tfjs'];

/** The training backend for a name; `auto` is onnx (measured: `npm run bench`, bench/results/train.json). */
export async function trainingBackend(name: TrainingBackendName = 'auto'): Promise<TrainingBackend> {
  const picked = name === 'auto' ? 'onnx' : name;
  if (!TRAINING_BACKENDS.includes(name)) throw new TrainingError(`training backend "${name}" is not one of ${TRAINING_BACKENDS.join(', ')}`);
  const backend = await getBackend(picked);
  if (!canTrain(backend)) throw new TrainingError(`the ${picked} backend cannot train; reinstall @effnet/backend-${picked}`);
  return backend;
}

/** The device a training backend takes by default. */
export function defaultTrainingDevice(name: TrainingBackendName): Device {
  return name === 'tfjs' ? 'auto' : 'cpu';
}

/** What every task's training run takes besides its data and model (classification, detection, segmentation). */
export interface TrainingRunOptions {
  epochs: number;
  batch?: number;
  /** Output directory: model.* (latest), best.* (best validation metric), training-curves.png. */
  out: string;
  /** Continue the run saved in `out` (weights, epoch and schedule position). */
  resume?: boolean;
  /** Write into `out` even though it holds files (another run's checkpoint is replaced). */
  force?: boolean;
  /** Stop after this many epochs without a better validation metric. */
  patience?: number;
  seed?: number;
  /** Where training runs: 'auto' (ONNX Runtime), 'onnx' or 'tfjs'. */
  backend?: TrainingBackendName;
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
  /** Training accuracy (classification; NaN for other tasks). */
  accuracy?: number;
  lr?: number;
  imagesPerSecond?: number;
  /** The validation metric of the epoch (`metric` names it). */
  valAccuracy?: number;
  /** The task's validation metrics of the epoch, by name (valAccuracy, mAP50, mIoU, ...). */
  metrics?: Record<string, number>;
  /** Which validation metric decides `best` and early stopping. */
  metric?: string;
  device?: string;
}

/** One batch: the input images (NCHW float32) and the loss's targets by name. */
export interface Batch {
  input: Tensor;
  targets: Record<string, Tensor>;
}

export interface LoopOptions {
  session: TrainSession;
  /** Training samples. */
  size: number;
  batchSize: number;
  epochs: number;
  /** Epochs already done (a resumed run). */
  startEpoch: number;
  seed: number;
  /** Builds the batch of these samples for this epoch (augmented, seeded by (seed, epoch, index)). */
  batch(indices: number[], epoch: number): Promise<Batch>;
  /** Scores the session each epoch; the value under `metric` decides `best` (higher is better). */
  validate(session: TrainSession): Promise<Record<string, number>>;
  metric: string;
  /** Saves the latest checkpoint (and `best` when asked); `row` is the epoch's history row. */
  save(row: Record<string, number>, best: boolean): Promise<void>;
  /** Rows of the epochs already done (a resumed run). */
  history?: Record<string, number>[];
  patience?: number;
  onProgress?: (p: TrainProgress) => void;
}

export interface LoopResult {
  history: Record<string, number>[];
  stoppedEarly: boolean;
  /** Epochs trained in this call. */
  trained: number;
}

/** Runs epochs `startEpoch + 1 .. epochs`. The session is the caller's to dispose. */
export async function runTrainingLoop(o: LoopOptions): Promise<LoopResult> {
  const stepsPerEpoch = Math.ceil(o.size / o.batchSize);
  const history = [...(o.history ?? [])];
  let best = Math.max(-Infinity, ...history.map((h) => h[o.metric] ?? -Infinity));
  let sinceBest = 0;
  let trained = 0;
  for (let epoch = o.startEpoch; epoch < o.epochs; epoch++) {
    const order = seededShuffle(o.size, deriveSeed(o.seed, epoch));
    let lossSum = 0;
    let accSum = 0;
    let seen = 0;
    let lr = 0;
    const t0 = performance.now();
    for (let s = 0; s < stepsPerEpoch; s++) {
      const indices = order.slice(s * o.batchSize, (s + 1) * o.batchSize);
      const b = await o.batch(indices, epoch);
      const r = await o.session.stepWith(b.input, b.targets);
      if (!Number.isFinite(r.loss))
        throw new TrainingError(`the loss became ${r.loss} at epoch ${epoch + 1}, step ${s + 1}: training diverged; lower the learning rate (--lr) or check the data`);
      lr = r.lr;
      lossSum += r.loss * indices.length;
      accSum += r.accuracy * indices.length;
      seen += indices.length;
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
        device: o.session.device,
      });
    }
    const imagesPerSecond = seen / ((performance.now() - t0) / 1000);
    o.onProgress?.({ phase: 'val', epoch: epoch + 1, epochs: o.epochs, step: stepsPerEpoch, stepsPerEpoch, device: o.session.device });
    const metrics = await o.validate(o.session);
    const row: Record<string, number> = { epoch: epoch + 1, trainLoss: lossSum / seen, ...(Number.isNaN(accSum) ? {} : { trainAccuracy: accSum / seen }), ...metrics, imagesPerSecond, lr };
    history.push(row);
    trained++;
    const score = metrics[o.metric] ?? Number.NaN;
    o.onProgress?.({
      phase: 'epoch',
      epoch: epoch + 1,
      epochs: o.epochs,
      step: stepsPerEpoch,
      stepsPerEpoch,
      loss: row.trainLoss,
      accuracy: row.trainAccuracy ?? Number.NaN,
      valAccuracy: score,
      metrics,
      metric: o.metric,
      imagesPerSecond,
      device: o.session.device,
    });
    const better = score > best;
    if (better) {
      best = score;
      sinceBest = 0;
    }
    await o.save(row, better);
    if (!better && o.patience !== undefined && ++sinceBest >= o.patience) return { history, stoppedEarly: true, trained };
  }
  return { history, stoppedEarly: false, trained };
}

/** Training cannot start from an exported .onnx: it holds inference weights only (BatchNorm folded). */
export function onnxNotTrainable(model: string): TrainingError {
  return new TrainingError(`"${model}" is an exported ONNX file, which holds inference weights only (BatchNorm folded); train from the checkpoint or zoo entry it was exported from`);
}

/**
 * What every task's run does at the end of an epoch: `model.*` (and `best.*` when the epoch is the best so far) in
 * `out`, and the training curves redrawn with the task's metrics.
 */
export async function saveEpoch(out: string, weights: TensorMap, card: ModelCard, best: boolean, history: readonly Record<string, number>[], metrics: readonly string[]): Promise<void> {
  await saveCheckpoint(out, 'model', weights, card);
  if (best) await saveCheckpoint(out, 'best', weights, card);
  await lineChartPng(trainingCurvePanels([...history], [...metrics]), join(out, 'training-curves.png'));
}

/** The card of a run's last epoch, or the error that says no epoch was left to train (a resume past --epochs). */
export function lastCard(card: ModelCard | undefined, out: string, startEpoch: number, epochs: number): ModelCard {
  if (!card) throw new TrainingError(`nothing to train: the checkpoint in ${out} already has ${startEpoch} of ${epochs} epochs; raise --epochs`);
  return card;
}

/** Where a run starts, in every task: the weights (null: random), whether the head is kept, and the schedule position. */
export interface RunStart {
  preprocessing: Preprocessing;
  /** Trained weights to start from (null: random initialisation). */
  weights: TensorMap | null;
  /** The start's classes are the dataset's: keep its head (classifier, class net, segmentation head). */
  keepHead: boolean;
  /** What the run started from, for the card: a zoo entry, a checkpoint path, 'random'. */
  base: string;
  epoch: number;
  step: number;
  history: Record<string, number>[];
  /** A resumed run: the recipe its card recorded (resumedRecipeOptions continues with it). */
  recipe?: unknown;
}

/** A run starting at epoch 0 (new head) from `weights` (null: random). */
export function freshStart(preprocessing: Preprocessing, weights: TensorMap | null, base: string): RunStart {
  return { preprocessing, weights, keepHead: false, base, epoch: 0, step: 0, history: [] };
}

/**
 * A run's start from a checkpoint of `task`: `resume` continues the run saved there (same classes required, schedule
 * and history kept; a missing checkpoint says to train without --resume first); otherwise the checkpoint's weights
 * start a new run, keeping its head when its classes are the dataset's. `hint` ends the wrong-task error.
 */
export async function checkpointStart(path: string, o: { task: 'classification' | 'detection' | 'segmentation'; classes: readonly string[]; resume: boolean; hint: string }): Promise<{ checkpoint: LoadedCheckpoint; start: RunStart }> {
  const ck = await loadCheckpoint(path).catch((e: Error) => {
    throw o.resume ? new TrainingError(`--resume: no checkpoint to resume in ${path} (${e.message}); train without --resume first`) : e;
  });
  const task = ck.card.task ?? 'classification';
  if (task !== o.task) throw new TrainingError(`${path} is a ${task} checkpoint; ${o.hint}`);
  const same = ck.card.classes.join('\n') === o.classes.join('\n');
  if (o.resume && !same) throw new TrainingError(`--resume: the checkpoint's classes (${ck.card.classes.join(', ')}) differ from the dataset's (${o.classes.join(', ')})`);
  const r = o.resume;
  return {
    checkpoint: ck,
    start: {
      preprocessing: ck.card.preprocessing,
      weights: ck.weights,
      keepHead: same,
      base: r ? ck.card.base : path,
      epoch: r ? ck.card.epoch : 0,
      step: r ? ck.card.step : 0,
      history: r ? (ck.card.history ?? []) : [],
      ...(r ? { recipe: ck.card.training?.recipe } : {}),
    },
  };
}

/** What every task's training run returns. */
export interface TrainingRunResult {
  /** The card of the last epoch trained. */
  card: ModelCard;
  /** The checkpoint directory. */
  out: string;
  stoppedEarly: boolean;
  history: Record<string, number>[];
  recipe: Recipe;
}

/** What a run's card records of the run in every task; `extra` (the task's own facts) goes before the recipe. */
export interface RunRecord {
  /** The card's name (default: the output directory's, else `fallbackName`). */
  name: string | undefined;
  out: string;
  fallbackName: string;
  base: string;
  seed: number;
  /** Optimizer steps so far (the session's). */
  steps: number;
  /** The epoch's history row, and every row so far. */
  row: Record<string, number>;
  history: Record<string, number>[];
  data: string;
  val: string | undefined;
  valFraction: number | undefined;
  trainImages: number;
  valImages: number;
  epochs: number;
  batch: number;
  backend: string;
  device: string;
  freeze: string;
  extra: Record<string, unknown>;
  recipe: Recipe;
}

/** The task-independent fields of a run's model card: name, weights file, start, seed, position, run facts, history. */
export function runCardFields(r: RunRecord): Pick<ModelCard, 'format' | 'name' | 'weights' | 'base' | 'seed' | 'epoch' | 'step' | 'training' | 'history' | 'created'> {
  return {
    format: MODEL_CARD_FORMAT,
    name: r.name ?? r.out.split(/[\\/]/).filter(Boolean).at(-1) ?? r.fallbackName,
    weights: 'model.safetensors',
    base: r.base,
    seed: r.seed,
    epoch: r.row.epoch!,
    step: r.steps,
    training: {
      data: r.data,
      val: r.val ?? `seeded split of the images, valFraction ${r.valFraction ?? 0.1}`,
      trainImages: r.trainImages,
      valImages: r.valImages,
      epochs: r.epochs,
      batch: r.batch,
      backend: r.backend,
      device: r.device,
      freeze: r.freeze,
      ...r.extra,
      recipe: { ...r.recipe, summary: describeRecipe(r.recipe) },
    },
    history: r.history,
    created: new Date().toISOString(),
  };
}
