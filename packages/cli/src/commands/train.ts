import { join } from 'node:path';
import { AUGMENT_LEVELS, type AugmentLevel, OPTIMIZERS, type OptimizerName, type Recipe, SCHEDULES, type ScheduleName, TRAINING_BACKENDS, type TrainingBackendName, type TrainProgress } from '@effnet/tasks/training';
import { defineCommand, UsageError } from '../args.js';
import { bar, duration, type ProgressSink, redraw } from '../progress.js';

/** Training progress: a bar with loss/accuracy/throughput on a terminal, one line per epoch otherwise. */
export function trainReporter(sink: ProgressSink): (p: TrainProgress) => void {
  const t0 = Date.now();
  return (p) => {
    const frac = ((p.epoch - 1) * p.stepsPerEpoch + p.step) / (p.epochs * p.stepsPerEpoch);
    const elapsed = (Date.now() - t0) / 1000;
    if (p.phase === 'train' && sink.isTTY) {
      const width = Math.max(10, Math.min(30, (sink.columns ?? 100) - 80));
      const acc = p.accuracy === undefined || Number.isNaN(p.accuracy) ? '' : ` acc ${(100 * p.accuracy).toFixed(1)}%`;
      redraw(sink, `epoch ${p.epoch}/${p.epochs} ${bar(p.step / p.stepsPerEpoch, width)} loss ${p.loss!.toFixed(3)}${acc} ${p.imagesPerSecond?.toFixed(1) ?? '?'} img/s lr ${p.lr!.toExponential(1)} ETA ${duration((elapsed / frac) * (1 - frac))}`);
    }
    if (p.phase === 'val' && sink.isTTY) redraw(sink, `epoch ${p.epoch}/${p.epochs} validating...`);
    if (p.phase === 'epoch') {
      if (sink.isTTY) sink.write('\r\x1b[2K');
      const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`);
      const metrics = Object.entries(p.metrics ?? {}).map(([k, v]) => `${k} ${k.toLowerCase().includes('loss') ? v.toFixed(4) : pct(v)}`);
      const acc = p.accuracy === undefined || Number.isNaN(p.accuracy) ? '' : `  train acc ${pct(p.accuracy)}`;
      const eta = p.epoch < p.epochs ? `, ETA ${duration((elapsed / frac) * (1 - frac))}` : '';
      sink.write(`epoch ${p.epoch}/${p.epochs}: loss ${p.loss!.toFixed(4)}${acc}  ${metrics.join('  ')}  ${p.imagesPerSecond?.toFixed(1) ?? '?'} img/s (${p.device}, ${duration(elapsed)}${eta})\n`);
    }
  };
}

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'fine-tune (or train from scratch) on your images; --find-lr suggests a learning rate',
  usage: 'effnet train --data DIR --model M --epochs N [options]',
  options: {
    task: { type: 'string', choices: ['classification', 'detection', 'segmentation'], default: 'classification', valueName: 'TASK', description: 'what the model learns: classes of images, boxes (COCO data), or a class per pixel (index masks)' },
    data: { type: 'string', required: true, valueName: 'DIR', description: 'classification: an ImageFolder (a sub-directory of images per class); detection: a COCO directory (annotations.json + images); segmentation: DIR/images/* + DIR/masks/<stem>.png (index PNGs, 255 = ignore) [+ classes.txt]' },
    val: { type: 'string', valueName: 'DIR', description: 'separate validation data of the same kind (default: a seeded 10% split of --data)' },
    model: { type: 'string', required: true, valueName: 'M', description: 'where to start: a zoo entry (pretrained), a checkpoint, or an architecture (from scratch)' },
    backbone: { type: 'string', valueName: 'M', description: 'detection (and segmentation: the encoder) from an architecture: a classifier (zoo entry or checkpoint) whose trunk starts the backbone; for bifpnseg also a detector (backbone and BiFPN)' },
    loss: { type: 'string', choices: ['ce', 'dice', 'ce+dice'], valueName: 'LOSS', description: "segmentation: cross-entropy (ignore 255, default), smp's multiclass Dice, or their sum" },
    epochs: { type: 'number', integer: true, min: 1, max: 100000, required: true, valueName: 'N', description: 'epochs to train (in total, with --resume)' },
    batch: { type: 'number', integer: true, min: 1, max: 4096, valueName: 'N', description: 'images per step (default 32)' },
    backend: { type: 'string', choices: TRAINING_BACKENDS, default: 'auto', valueName: 'NAME', description: 'where training runs (auto: ONNX Runtime, the fastest here)' },
    device: { type: 'string', choices: ['auto', 'cpu', 'cuda', 'webgpu', 'wasm', 'js', 'gpu'], valueName: 'DEVICE', description: 'the backend\'s device (default cpu for onnx, auto for tfjs)' },
    freeze: { type: 'string', default: 'none', valueName: 'WHAT', description: 'backbone (train the classifier only), none, or stages:K (the last K stages, head and classifier)' },
    optimizer: { type: 'string', choices: OPTIMIZERS, valueName: 'NAME', description: 'default adamw' },
    lr: { type: 'number', above: 0, max: 10, valueName: 'X', description: 'peak learning rate (default: 1e-2 linear probe, 1e-3 fine-tune, 3e-3 from scratch; --find-lr suggests one)' },
    'weight-decay': { type: 'number', min: 0, max: 1, valueName: 'X', description: 'default 0.05 (adamw), 1e-4 (adam, sgd)' },
    momentum: { type: 'number', min: 0, below: 1, valueName: 'X', description: 'SGD momentum (default 0.9, with Nesterov)' },
    schedule: { type: 'string', choices: SCHEDULES, valueName: 'NAME', description: 'default cosine' },
    warmup: { type: 'number', min: 0, max: 1000, valueName: 'EPOCHS', description: 'linear warmup, in epochs (default: min(1 epoch, 5% of the steps))' },
    'label-smoothing': { type: 'number', min: 0, below: 1, valueName: 'X', description: 'classification: cross-entropy label smoothing (default 0.1)' },
    augment: { type: 'string', choices: AUGMENT_LEVELS, valueName: 'LEVEL', description: 'crops (classification) or scale jitter (detection) and flips (default: chosen from the task, image and dataset size; see the printed recipe)' },
    'crop-scale': { type: 'numbers', count: 2, above: 0, max: 1, valueName: 'MIN,MAX', description: 'RandomResizedCrop area range (overrides --augment\'s)' },
    'no-flip': { type: 'boolean', description: 'no horizontal flips (digits, text, anything where left and right differ)' },
    size: { type: 'number', integer: true, min: 8, max: 4096, valueName: 'N', description: "input size (default the model's)" },
    'crop-pct': { type: 'number', above: 0, max: 1, valueName: 'X', description: "validation centre-crop fraction (default the model's)" },
    dropout: { type: 'number', min: 0, below: 1, valueName: 'X', description: 'dropout before the classifier' },
    'drop-path': { type: 'number', min: 0, below: 1, valueName: 'X', description: 'stochastic depth rate' },
    patience: { type: 'number', integer: true, min: 1, valueName: 'N', description: 'stop after N epochs without a better validation accuracy' },
    seed: { type: 'number', integer: true, min: 0, max: 2 ** 32 - 1, valueName: 'N', description: 'seed for the split, shuffling, augmentation and initialisation (default 0)' },
    out: { type: 'string', default: 'effnet-out', valueName: 'DIR', description: 'where checkpoints go (model.*, best.*, training-curves.png)' },
    resume: { type: 'boolean', description: 'continue the run saved in --out' },
    force: { type: 'boolean', description: 'replace what --out holds (refused by default)' },
    'find-lr': { type: 'boolean', description: 'run a learning-rate range test instead of training: prints and plots (--out/lr-finder.png) the suggested rate' },
    'lr-steps': { type: 'number', integer: true, min: 5, max: 100000, default: 100, valueName: 'N', description: 'steps of the range test' },
  },
  notes: ['The recipe in effect (and why each default was chosen) is printed at the start and stored in the model card.'],
  examples: [
    'effnet train --data photos/ --model effnet-shapes --epochs 6 --out runs/photos',
    'effnet train --data photos/ --model efficientnet_b0.ra_in1k --epochs 10 --freeze stages:2 --optimizer adam --lr 3e-4',
    'effnet train --data digits/ --model effnet-shapes --epochs 1 --find-lr --out runs/digits',
    'effnet train --task detection --data scenes/ --model effnet-shapes-det --epochs 10 --out runs/det',
    'effnet train --task segmentation --data scenes/ --model effnet-shapes-seg --loss ce+dice --epochs 10 --out runs/seg',
    'effnet train --data photos/ --model effnet-shapes --epochs 12 --out runs/photos --resume',
  ],
  async run({ values: v }, io) {
    const { fineTune, fineTuneDetector, fineTuneSegmenter, findLearningRate, describeRecipe } = await import('@effnet/tasks');
    const options = {
      data: v.data,
      val: v.val,
      model: v.model,
      epochs: v.epochs,
      batch: v.batch,
      backend: v.backend as TrainingBackendName,
      device: v.device as never,
      freeze: v.freeze as never,
      optimizer: v.optimizer as OptimizerName | undefined,
      lr: v.lr,
      weightDecay: v['weight-decay'],
      momentum: v.momentum,
      schedule: v.schedule as ScheduleName | undefined,
      warmupEpochs: v.warmup,
      labelSmoothing: v['label-smoothing'],
      augment: v.augment as AugmentLevel | undefined,
      cropScale: v['crop-scale'] as [number, number] | undefined,
      ...(v['no-flip'] ? { flip: false } : {}),
      size: v.size,
      cropPct: v['crop-pct'],
      dropout: v.dropout,
      dropPath: v['drop-path'],
      patience: v.patience,
      seed: v.seed,
      out: v.out,
      resume: v.resume,
      force: v.force,
      onProgress: trainReporter(io.progress),
      onRecipe: (r: Recipe) => {
        io.progress.write(`recipe: ${describeRecipe(r)}\n`);
        for (const [field, why] of Object.entries(r.reasons)) io.progress.write(`  ${field}: ${why}\n`);
      },
    };
    if (v.task === 'detection') {
      if (v['find-lr']) throw new UsageError('effnet train: --find-lr is for classification (for now); pass --lr to a detection run');
      if (v.freeze !== 'none' && v.freeze !== 'backbone') throw new UsageError(`invalid --freeze: "${v.freeze}" (detection: backbone or none)`);
      const r = await fineTuneDetector({ ...options, backbone: v.backbone, freeze: v.freeze as 'none' | 'backbone' });
      const m = r.card.metrics ?? {};
      io.out(`wrote ${join(r.out, 'model.safetensors')} and model.json (epoch ${r.card.epoch}${r.stoppedEarly ? ', stopped early: no better validation AP' : ''}); best.safetensors holds the best validation AP; training-curves.png`);
      io.out(`validation AP ${(m.AP ?? Number.NaN).toFixed(3)}, AP50 ${(m.AP50 ?? Number.NaN).toFixed(3)}  (classes: ${r.card.classes.join(', ')})`);
      return 0;
    }
    if (v.task === 'segmentation') {
      if (v['find-lr']) throw new UsageError('effnet train: --find-lr is for classification (for now); pass --lr to a segmentation run');
      if (v.freeze !== 'none' && v.freeze !== 'encoder') throw new UsageError(`invalid --freeze: "${v.freeze}" (segmentation: encoder or none)`);
      const r = await fineTuneSegmenter({ ...options, encoder: v.backbone, freeze: v.freeze as 'none' | 'encoder', loss: v.loss as 'ce' | 'dice' | 'ce+dice' | undefined });
      const m = r.card.metrics ?? {};
      io.out(`wrote ${join(r.out, 'model.safetensors')} and model.json (epoch ${r.card.epoch}${r.stoppedEarly ? ', stopped early: no better validation mIoU' : ''}); best.safetensors holds the best validation mIoU; training-curves.png`);
      io.out(`validation mIoU ${(m.mIoU ?? Number.NaN).toFixed(3)}, pixel accuracy ${(m.pixelAccuracy ?? Number.NaN).toFixed(3)}  (classes: ${r.card.classes.join(', ')})`);
      return 0;
    }
    if (v.loss !== undefined) throw new UsageError('effnet train: --loss is for segmentation');
    if (v.backbone !== undefined) throw new UsageError('effnet train: --backbone is for detection and segmentation (a classifier starts from --model)');
    if (v['find-lr']) {
      const r = await findLearningRate({ ...options, steps: v['lr-steps'] });
      io.out(`suggested learning rate ${r.suggested.toExponential(1)} (steepest descent of the loss over ${r.points.length} steps); wrote ${r.plot}`);
      io.out(`train with: --lr ${r.suggested.toPrecision(2)}`);
      return 0;
    }
    const r = await fineTune(options);
    const m = r.card.metrics ?? {};
    io.out(`wrote ${join(r.out, 'model.safetensors')} and model.json (epoch ${r.card.epoch}${r.stoppedEarly ? ', stopped early: no better validation accuracy' : ''}); best.safetensors holds the best validation accuracy; training-curves.png`);
    io.out(`validation accuracy ${(100 * (m.valAccuracy ?? Number.NaN)).toFixed(1)}%  (classes: ${r.card.classes.join(', ')})`);
    return 0;
  },
});
