import { join } from 'node:path';
import type { TrainProgress } from '@effnet/tasks';
import { defineCommand } from '../args.js';
import { bar, duration, type ProgressSink, redraw } from '../progress.js';

/** Training progress: a bar with loss/accuracy/throughput on a terminal, one line per epoch otherwise. */
export function trainReporter(sink: ProgressSink): (p: TrainProgress) => void {
  const t0 = Date.now();
  return (p) => {
    const frac = ((p.epoch - 1) * p.stepsPerEpoch + p.step) / (p.epochs * p.stepsPerEpoch);
    const elapsed = (Date.now() - t0) / 1000;
    if (p.phase === 'train' && sink.isTTY) {
      const width = Math.max(10, Math.min(30, (sink.columns ?? 100) - 80));
      redraw(
        sink,
        `epoch ${p.epoch}/${p.epochs} ${bar(p.step / p.stepsPerEpoch, width)} loss ${p.loss!.toFixed(3)} acc ${(100 * p.accuracy!).toFixed(1)}% ${p.imagesPerSecond!.toFixed(1)} img/s lr ${p.lr!.toExponential(1)} ETA ${duration((elapsed / frac) * (1 - frac))}`,
      );
    }
    if (p.phase === 'epoch') {
      if (sink.isTTY) sink.write('\n');
      sink.write(`epoch ${p.epoch}/${p.epochs}: loss ${p.loss!.toFixed(4)}  train acc ${(100 * p.accuracy!).toFixed(1)}%  val acc ${Number.isNaN(p.valAccuracy) ? 'n/a' : `${(100 * p.valAccuracy!).toFixed(1)}%`}  (${p.device}, ${duration(elapsed)})\n`);
    }
  };
}

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'fine-tune a classifier on an image folder',
  usage: 'effnet train --data DIR --model M --epochs N [options]',
  options: {
    data: { type: 'string', required: true, valueName: 'DIR', description: 'ImageFolder root: one sub-directory of images per class' },
    val: { type: 'string', valueName: 'DIR', description: 'a separate validation ImageFolder (default: a seeded 10% split of --data)' },
    model: { type: 'string', required: true, valueName: 'M', description: 'where to start: a zoo entry (pretrained), a checkpoint, or a variant (from scratch)' },
    epochs: { type: 'number', integer: true, min: 1, max: 100000, required: true, valueName: 'N', description: 'epochs to train (in total, with --resume)' },
    batch: { type: 'number', integer: true, min: 1, max: 4096, valueName: 'N', description: 'images per step (default 32)' },
    lr: { type: 'number', above: 0, max: 10, valueName: 'X', description: 'peak learning rate (default 1e-3, 1e-2 with --freeze backbone)' },
    freeze: { type: 'string', default: 'none', valueName: 'WHAT', description: 'backbone (train the classifier only), none, or stages:K (the last K stages, head and classifier)' },
    'label-smoothing': { type: 'number', min: 0, below: 1, valueName: 'X', description: 'cross-entropy label smoothing (default 0.1)' },
    size: { type: 'number', integer: true, min: 8, max: 4096, valueName: 'N', description: "input size (default the model's)" },
    patience: { type: 'number', integer: true, min: 1, valueName: 'N', description: 'stop after N epochs without a better validation accuracy' },
    resume: { type: 'boolean', description: 'continue the run saved in --out' },
    force: { type: 'boolean', description: 'replace what --out holds (refused by default)' },
    seed: { type: 'number', integer: true, min: 0, max: 2 ** 32 - 1, valueName: 'N', description: 'seed for the split, shuffling, augmentation and initialisation (default 0)' },
    out: { type: 'string', default: 'effnet-out', valueName: 'DIR', description: 'where checkpoints go (model.safetensors + model.json, best.*)' },
    device: { type: 'string', choices: ['auto', 'cpu', 'wasm', 'js', 'gpu', 'cuda'], valueName: 'DEVICE', description: 'tfjs runtime (default auto)' },
    'crop-scale': { type: 'numbers', count: 2, above: 0, max: 1, valueName: 'MIN,MAX', description: 'RandomResizedCrop area range (default 0.08,1)' },
    'crop-pct': { type: 'number', above: 0, max: 1, valueName: 'X', description: "validation centre-crop fraction (default the model's)" },
    dropout: { type: 'number', min: 0, below: 1, valueName: 'X', description: 'dropout before the classifier' },
    'drop-path': { type: 'number', min: 0, below: 1, valueName: 'X', description: 'stochastic depth rate' },
  },
  examples: ['effnet train --data photos/ --model effnet-shapes --epochs 6 --out runs/photos', 'effnet train --data photos/ --model efficientnet_b0.ra_in1k --epochs 10 --freeze stages:2', 'effnet train --data photos/ --model effnet-shapes --epochs 12 --out runs/photos --resume'],
  async run({ values: v }, io) {
    const { fineTune } = await import('@effnet/tasks');
    const r = await fineTune({
      data: v.data,
      val: v.val,
      model: v.model,
      epochs: v.epochs,
      batch: v.batch,
      lr: v.lr,
      freeze: v.freeze as never,
      labelSmoothing: v['label-smoothing'],
      size: v.size,
      patience: v.patience,
      resume: v.resume,
      force: v.force,
      seed: v.seed,
      out: v.out,
      device: v.device as never,
      cropScale: v['crop-scale'] as [number, number] | undefined,
      cropPct: v['crop-pct'],
      dropout: v.dropout,
      dropPath: v['drop-path'],
      onProgress: trainReporter(io.progress),
    });
    const m = r.card.metrics ?? {};
    io.out(`wrote ${join(r.out, 'model.safetensors')} and model.json (epoch ${r.card.epoch}${r.stoppedEarly ? ', stopped early: no better validation accuracy' : ''}); best.safetensors holds the best validation accuracy`);
    io.out(`validation accuracy ${(100 * (m.valAccuracy ?? Number.NaN)).toFixed(1)}%  (classes: ${r.card.classes.join(', ')})`);
    return 0;
  },
});
