import { InvalidSpecError } from './errors.js';
import type { Graph } from './graph.js';
import type { LoadOptions } from './backend.js';
import type { LossSpec } from './losses.js';
import type { Tensor, TensorMap } from './tensor.js';

/** PyTorch semantics: Adam's weight decay is L2 in the gradient, AdamW's is decoupled. */
export type OptimizerConfig =
  | { kind: 'sgd'; lr: number; momentum?: number; nesterov?: boolean; weightDecay?: number }
  | { kind: 'adam'; lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }
  | { kind: 'adamw'; lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number };

export type ScheduleConfig =
  | { kind: 'constant' }
  /** Linear warmup from 0, then cosine from lr to minLr at totalSteps. */
  | { kind: 'cosine'; totalSteps: number; warmupSteps?: number; minLr?: number }
  /** lr * gamma^floor(step / stepSize). */
  | { kind: 'step'; stepSize: number; gamma?: number }
  /** From lr up (or down) to endLr geometrically over `steps` steps, then endLr: a learning-rate range test. */
  | { kind: 'exponential'; steps: number; endLr: number };

/** Learning rate at a step (0-based) for a base rate and schedule; every training backend uses this one. */
export function learningRate(base: number, schedule: ScheduleConfig, step: number): number {
  switch (schedule.kind) {
    case 'constant':
      return base;
    case 'step':
      return base * (schedule.gamma ?? 0.1) ** Math.floor(step / schedule.stepSize);
    case 'exponential':
      return base * (schedule.endLr / base) ** Math.min(1, step / Math.max(1, schedule.steps - 1));
    case 'cosine': {
      const warm = schedule.warmupSteps ?? 0;
      const min = schedule.minLr ?? 0;
      if (step < warm) return (base * (step + 1)) / warm;
      const t = Math.min(1, (step - warm) / Math.max(1, schedule.totalSteps - warm));
      return min + 0.5 * (base - min) * (1 + Math.cos(Math.PI * t));
    }
  }
}

export interface TrainerOptions {
  optimizer: OptimizerConfig;
  schedule?: ScheduleConfig;
  /** Cross-entropy label smoothing in [0, 1). */
  labelSmoothing?: number;
  /** Clip gradients to this global L2 norm. */
  clipGradNorm?: number;
  /** Names of the parameters to train (default: every trainable parameter). */
  trainable?: string[];
  /** BatchNorm stays in inference mode (running statistics, no updates) while the rest trains. */
  freezeBatchNorm?: boolean;
  /** Seed for dropout and drop-path masks. */
  seed?: number;
  /** Steps already done (a resumed run): the schedule continues from here. */
  startStep?: number;
  /**
   * What to minimise (default: cross-entropy of the first output against int64 `labels`, with `labelSmoothing`).
   * Detection and segmentation pass their losses here; a backend that cannot train a loss says so.
   */
  loss?: LossSpec;
}

export interface StepResult {
  loss: number;
  /** Fraction of the batch classified correctly (before the update); NaN when the loss is not a classification's. */
  accuracy: number;
  lr: number;
  gradNorm: number;
}

/** A model being trained: steps on NCHW float32 batches, and its current weights under canonical names. */
export interface TrainSession {
  readonly device: string;
  readonly notes: readonly string[];
  readonly steps: number;
  /** One step of classification: int32 class indices, one per image. */
  step(batch: Tensor, labels: Int32Array): Promise<StepResult>;
  /** One step with the loss's targets by name (see LossSpec): per-anchor targets, masks, ... */
  stepWith(batch: Tensor, targets: Record<string, Tensor>): Promise<StepResult>;
  /** The first output in inference mode (running BN statistics, no dropout), for validation during training. */
  predict(batch: Tensor): Promise<Tensor>;
  /** Every graph output in inference mode, by name (NCHW). */
  predictAll(batch: Tensor): Promise<Record<string, Tensor>>;
  /** Every parameter and BatchNorm statistic, canonical names, PyTorch layouts, float32. */
  weights(): TensorMap;
  dispose(): void;
}

/** A backend that can train (tfjs, onnx); tasks reach training only through this. */
export interface TrainingBackend {
  readonly name: string;
  createTrainer(graph: Graph, weights: TensorMap, options: TrainerOptions & LoadOptions): Promise<TrainSession>;
}

export function canTrain(backend: object): backend is TrainingBackend {
  return typeof (backend as Partial<TrainingBackend>).createTrainer === 'function';
}

/**
 * Which parameters train: every trainable one whose name starts with a `train` prefix (all when none given) and
 * with no `freeze` prefix. E.g. { train: ['classifier'] } for a linear probe, { freeze: ['conv_stem', 'blocks.0'] }.
 */
export function selectTrainable(graph: Graph, o: { train?: string[]; freeze?: string[] } = {}): string[] {
  const starts = (name: string, prefixes: string[]) => prefixes.some((p) => name === p || name.startsWith(p.endsWith('.') ? p : `${p}.`));
  const names = graph.parameters.filter((p) => p.trainable).map((p) => p.name);
  const picked = names.filter((n) => (!o.train?.length || starts(n, o.train)) && !(o.freeze?.length && starts(n, o.freeze)));
  if (picked.length === 0) throw new InvalidSpecError('trainable prefixes', o, `prefixes that match some parameter (e.g. classifier, blocks.6, conv_head)`);
  return picked;
}

/** Prefixes of the last `k` stages plus the head and classifier: what "unfreeze the last k stages" trains. */
export function lastStagesPrefixes(graph: Graph, k: number): string[] {
  const stages = [...new Set(graph.parameters.map((p) => /^blocks\.(\d+)\./.exec(p.name)?.[1]).filter((s): s is string => s !== undefined))].map(Number);
  const last = Math.max(...stages);
  const keep = stages.filter((s) => s > last - k).map((s) => `blocks.${s}`);
  return [...keep, 'conv_head', 'bn2', 'classifier'];
}

