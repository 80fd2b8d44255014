/**
 * A training recipe: optimizer, learning rate and schedule, regularisation and augmentation. Every field may be set
 * by the user; what is not set is chosen from the data (image size, dataset size) and the start (pretrained or from
 * scratch, frozen or not), and each choice is recorded with its reason so that the run and its card say what was used
 * and why.
 */
import { checkNumber, InvalidSpecError, type OptimizerConfig, type ScheduleConfig } from '@effnet/core';

export const OPTIMIZERS = ['adamw', 'adam', 'sgd'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];
export const SCHEDULES = ['cosine', 'step', 'constant'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];
/** none: resize only; light: mild crops and flips; default: torchvision's crops at a floor for small data; strong: ImageNet's RandomResizedCrop(0.08, 1). */
export const AUGMENT_LEVELS = ['none', 'light', 'default', 'strong'] as const;
export type AugmentLevel = (typeof AUGMENT_LEVELS)[number];

/** What the user may set; anything left out is chosen by `resolveRecipe`. */
export interface RecipeOptions {
  optimizer?: OptimizerName;
  lr?: number;
  weightDecay?: number;
  /** SGD momentum (also turns on Nesterov when > 0 unless `nesterov: false`). */
  momentum?: number;
  nesterov?: boolean;
  schedule?: ScheduleName;
  /** Warmup as a number of epochs (fractions allowed). */
  warmupEpochs?: number;
  labelSmoothing?: number;
  augment?: AugmentLevel;
  /** RandomResizedCrop area range; overrides the augment level's. */
  cropScale?: [number, number];
  /** Horizontal flips (default: on, except with augment none). */
  flip?: boolean;
}

/** What a model learns; detection and segmentation augment by scale jitter rather than crops, without label smoothing. */
export type RecipeTask = 'classification' | 'detection' | 'segmentation';

/** Scale jitter (random rescale then crop/pad to the model size) per augmentation level, as effdet's training
 * transform; effdet trains COCO with (0.1, 2.0), which is 'strong'. */
export const SCALE_JITTERS: Record<AugmentLevel, [number, number] | null> = { none: null, light: [0.75, 1.33], default: [0.5, 1.5], strong: [0.1, 2.0] };
/** Segmentation's strong level is DeepLab's (0.5-2.0): below half size the masks' small regions vanish. */
const SEGMENTATION_STRONG_JITTER: [number, number] = [0.5, 2.0];

/** What the recipe is trained on and from. */
export interface RecipeContext {
  /** Default classification. */
  task?: RecipeTask;
  /** Part of the model starts from random weights (detection: a classifier's backbone under a new BiFPN and heads, or a
   * detector's new class net for new categories; segmentation: a new decoder on a classifier's encoder). */
  newHeads?: boolean;
  /** Input size in pixels. */
  imageSize: number;
  trainImages: number;
  stepsPerEpoch: number;
  epochs: number;
  /** Starting from pretrained weights (a zoo entry or checkpoint), not from scratch. */
  pretrained: boolean;
  /** Only the classifier trains (a linear probe on frozen features). */
  frozenBackbone: boolean;
}

export interface Recipe {
  task: RecipeTask;
  optimizer: OptimizerName;
  lr: number;
  weightDecay: number;
  momentum: number;
  nesterov: boolean;
  schedule: ScheduleName;
  warmupSteps: number;
  labelSmoothing: number;
  augment: AugmentLevel;
  cropScale: [number, number];
  /** Detection and segmentation: the scale jitter range (null: resize only). */
  scaleJitter: [number, number] | null;
  flip: boolean;
  /** Why each default was chosen (fields the user set are not listed). */
  reasons: Record<string, string>;
}

const CROP_SCALES: Record<AugmentLevel, [number, number]> = { none: [1, 1], light: [0.6, 1], default: [0.25, 1], strong: [0.08, 1] };

export function checkRecipeOptions(o: RecipeOptions): void {
  if (o.optimizer !== undefined && !OPTIMIZERS.includes(o.optimizer)) throw new InvalidSpecError('optimizer', o.optimizer, `one of ${OPTIMIZERS.join(', ')}`);
  if (o.schedule !== undefined && !SCHEDULES.includes(o.schedule)) throw new InvalidSpecError('schedule', o.schedule, `one of ${SCHEDULES.join(', ')}`);
  if (o.augment !== undefined && !AUGMENT_LEVELS.includes(o.augment)) throw new InvalidSpecError('augment', o.augment, `one of ${AUGMENT_LEVELS.join(', ')}`);
  if (o.lr !== undefined) checkNumber('lr', o.lr, { above: 0, max: 10 });
  if (o.weightDecay !== undefined) checkNumber('weightDecay', o.weightDecay, { min: 0, max: 1 });
  if (o.momentum !== undefined) checkNumber('momentum', o.momentum, { min: 0, below: 1 });
  if (o.warmupEpochs !== undefined) checkNumber('warmupEpochs', o.warmupEpochs, { min: 0 });
  if (o.labelSmoothing !== undefined) checkNumber('labelSmoothing', o.labelSmoothing, { min: 0, below: 1 });
  if (o.cropScale !== undefined) {
    if (!Array.isArray(o.cropScale) || o.cropScale.length !== 2) throw new InvalidSpecError('cropScale', o.cropScale, 'two numbers [min, max] in (0, 1]');
    for (const v of o.cropScale) checkNumber('cropScale', v, { above: 0, max: 1 });
    if (o.cropScale[0] > o.cropScale[1]) throw new InvalidSpecError('cropScale', o.cropScale, '[min, max] with min <= max');
  }
}

/**
 * The recipe for a run: the user's choices, and for the rest defaults that fit the data. The rules (measured on small
 * real datasets against a PyTorch fine-tune of the same model and data: README, "Fine-tuning defaults"):
 * - augmentation: ImageNet's RandomResizedCrop(0.08, 1) destroys the signal of small images and small datasets; it is
 *   'strong' only from scratch on many (>= 20k) images of >= 160 px; fine-tuning and small or small-image data get 'light';
 * - optimizer AdamW; lr 1e-2 for a linear probe, 1e-3 to fine-tune pretrained weights, 3e-3 from scratch, 4e-3 for new
 *   layers (a detector's BiFPN and heads) on a pretrained backbone;
 * - detection and segmentation: scale jitter instead of crops (SCALE_JITTERS), no label smoothing;
 * - cosine schedule with a warmup of min(1 epoch, 5% of the steps);
 * - label smoothing 0.1, weight decay 0.05 (AdamW) or 1e-4 (Adam, SGD).
 */
export function resolveRecipe(o: RecipeOptions, ctx: RecipeContext): Recipe {
  checkRecipeOptions(o);
  const reasons: Record<string, string> = {};
  const pick = <T>(field: string, given: T | undefined, value: T, why: string): T => {
    if (given !== undefined) return given;
    reasons[field] = why;
    return value;
  };
  const task = ctx.task ?? 'classification';
  const dense = task !== 'classification';
  const smallImages = ctx.imageSize < 160;
  const smallData = ctx.trainImages < 20_000;
  const augment = pick(
    'augment',
    o.augment,
    !dense && !ctx.pretrained && !smallImages && !smallData ? 'strong' : 'light',
    dense
      ? task === 'detection'
        ? "detection: mild scale jitter (0.75-1.33) keeps objects at the sizes the anchors and data have; effdet's COCO recipe is --augment strong (0.1-2.0)"
        : 'segmentation: mild scale jitter (0.75-1.33), the same on image and mask (nearest), keeps regions at the sizes the data has; DeepLab trains with --augment strong (0.5-2.0)'
      : ctx.pretrained
        ? 'fine-tuning pretrained weights: mild crops keep what the features already know'
        : smallImages || smallData
          ? `${smallImages ? `${ctx.imageSize} px images` : ''}${smallImages && smallData ? ', ' : ''}${smallData ? `${ctx.trainImages} training images` : ''}: strong crops would destroy the signal`
          : 'from scratch on a large dataset of large images: ImageNet-style crops',
  );
  const cropScale = o.cropScale ?? CROP_SCALES[augment];
  const flip = pick('flip', o.flip, augment !== 'none', augment === 'none' ? 'augment none' : 'horizontal flips (--no-flip where left and right differ, e.g. digits or text)');
  const optimizer = pick('optimizer', o.optimizer, 'adamw' as OptimizerName, 'AdamW: robust across fine-tuning and from-scratch runs');
  const [lrValue, lrWhy] = ctx.frozenBackbone
    ? [1e-2, 'a linear probe on frozen features']
    : ctx.newHeads
      ? task === 'segmentation'
        ? [4e-3, 'new layers (a decoder on a pretrained encoder, or a head for new classes) start from random weights: 4e-3 (measured for new classes: README, "The embedded segmenter")']
        : [4e-3, 'new layers (a BiFPN and heads, or a class net for new categories) start from random weights: 4e-3 (measured: README, "Training and evaluating detectors")']
      : ctx.pretrained
        ? [1e-3, `fine-tuning a pretrained ${dense ? task === 'detection' ? 'detector' : 'segmenter' : 'model'}`]
        : [3e-3, 'training from scratch'];
  const lr = pick('lr', o.lr, lrValue, lrWhy);
  const weightDecay = pick('weightDecay', o.weightDecay, optimizer === 'adamw' ? 0.05 : 1e-4, optimizer === 'adamw' ? 'decoupled decay (AdamW)' : 'L2 decay for Adam/SGD');
  const momentum = pick('momentum', o.momentum, optimizer === 'sgd' ? 0.9 : 0, optimizer === 'sgd' ? 'SGD with momentum 0.9' : 'not used by Adam');
  const schedule = pick('schedule', o.schedule, 'cosine' as ScheduleName, 'cosine decay to zero');
  const totalSteps = ctx.stepsPerEpoch * ctx.epochs;
  const warmupSteps =
    o.warmupEpochs !== undefined ? Math.round(o.warmupEpochs * ctx.stepsPerEpoch) : (reasons.warmup = 'min(1 epoch, 5% of the steps)', Math.min(ctx.stepsPerEpoch, Math.ceil(0.05 * totalSteps)));
  if (dense && o.labelSmoothing !== undefined && o.labelSmoothing > 0)
    throw new InvalidSpecError('labelSmoothing', o.labelSmoothing, `0 or nothing for ${task}: its loss has no label smoothing`);
  const labelSmoothing = pick('labelSmoothing', o.labelSmoothing, dense ? 0 : 0.1, dense ? `${task} loss: no label smoothing` : 'label smoothing 0.1');
  const scaleJitter = !dense ? null : task === 'segmentation' && augment === 'strong' ? SEGMENTATION_STRONG_JITTER : SCALE_JITTERS[augment];
  if (dense) delete reasons.labelSmoothing;
  return { task, optimizer, lr, weightDecay, momentum, nesterov: o.nesterov ?? momentum > 0, schedule, warmupSteps, labelSmoothing, augment, cropScale, scaleJitter, flip, reasons };
}

/**
 * A resumed run's options: what the user passes now, and for the rest the choices its card recorded
 * (`training.recipe`), so that the run continues with the rate, optimizer and augmentation it started with rather
 * than with the defaults of a pretrained start (a resumed run always starts from trained weights).
 */
export function resumedRecipeOptions<O extends RecipeOptions>(stored: unknown, given: O): O {
  if (!stored || typeof stored !== 'object') return given;
  const r = stored as Partial<Recipe>;
  const recorded: RecipeOptions = {
    optimizer: r.optimizer,
    lr: r.lr,
    weightDecay: r.weightDecay,
    momentum: r.momentum,
    nesterov: r.nesterov,
    schedule: r.schedule,
    labelSmoothing: r.labelSmoothing,
    augment: r.augment,
    cropScale: r.cropScale,
    flip: r.flip,
  };
  const out = { ...given } as Record<string, unknown>;
  for (const [k, v] of Object.entries(recorded)) if (v !== undefined && out[k] === undefined) out[k] = v;
  return out as O;
}

/** The optimizer and schedule of a recipe, as core's TrainerOptions take them. */
export function trainerSettings(r: Recipe, totalSteps: number): { optimizer: OptimizerConfig; schedule: ScheduleConfig } {
  const optimizer: OptimizerConfig =
    r.optimizer === 'sgd' ? { kind: 'sgd', lr: r.lr, momentum: r.momentum, nesterov: r.nesterov, weightDecay: r.weightDecay } : { kind: r.optimizer, lr: r.lr, weightDecay: r.weightDecay };
  const schedule: ScheduleConfig =
    r.schedule === 'cosine'
      ? { kind: 'cosine', totalSteps, warmupSteps: r.warmupSteps }
      : r.schedule === 'step'
        ? { kind: 'step', stepSize: Math.max(1, Math.round(totalSteps / 3)), gamma: 0.1 }
        : { kind: 'constant' };
  return { optimizer, schedule };
}

/** The recipe in one line, for logs and progress: "adamw lr 1e-3 wd 0.05, cosine (warmup 12 steps), crops 0.6-1 + flips, smoothing 0.1". */
export function describeRecipe(r: Recipe): string {
  const opt = `${r.optimizer} lr ${r.lr} wd ${r.weightDecay}${r.optimizer === 'sgd' ? ` momentum ${r.momentum}${r.nesterov ? ' nesterov' : ''}` : ''}`;
  const sched = r.schedule === 'cosine' ? `cosine (warmup ${r.warmupSteps} steps)` : r.schedule === 'step' ? 'step (x0.1 every third)' : 'constant';
  if (r.task !== 'classification') {
    const jitter = r.scaleJitter ? `scale jitter ${r.scaleJitter[0]}-${r.scaleJitter[1]}` : 'resize only';
    return `${opt}, ${sched}, ${r.augment} augmentation: ${jitter}${r.flip ? ' + flips' : ''}`;
  }
  const aug = `${r.augment} augmentation: crops ${r.cropScale[0]}-${r.cropScale[1]}${r.flip ? ' + flips' : ''}`;
  return `${opt}, ${sched}, ${aug}, label smoothing ${r.labelSmoothing}`;
}
