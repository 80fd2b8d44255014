import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EffnetError } from '@effnet/core';
import { Classifier, evaluate, type FreezeMode, fineTune, type TrainProgress } from '@effnet/tasks';
import { bar, duration, type ProgressSink, redraw } from '../progress.js';
import { formatTable } from '../table.js';

export const CLASSIFY_USAGE = `  effnet classify <image|dir...> --model <zoo name|checkpoint> [--weights-key K] [--backend onnx|tfjs] [--device ...] [--topk 5] [--json]
                                                    labels for JPEG/PNG/WebP images (a table, or JSON lines)
  effnet train --data <dir> --model <zoo name|variant|checkpoint> --epochs N [--batch B] [--lr X]
             [--freeze backbone|none|stages:K] [--label-smoothing X] [--val <dir>] [--size N]
             [--patience N] [--resume] [--seed N] [--out dir] [--crop-scale 0.08,1] [--crop-pct X] [--dropout X] [--drop-path X]
                                                    fine-tune on an ImageFolder (tfjs backend)
  effnet eval --data <dir> --weights <checkpoint file or --out dir> [--json] [--heatmap file.png]
                                                    accuracy, per-class precision/recall/F1, confusion matrix`;

const IMAGE = /\.(jpe?g|png|webp)$/i;

/** Files as given, directories expanded (sorted, recursively) to the images they hold. */
async function expand(inputs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of inputs) {
    const s = await stat(p).catch(() => null);
    if (!s) throw new EffnetError(`${p}: no such file or directory`);
    if (!s.isDirectory()) {
      out.push(p);
      continue;
    }
    const entries = (await readdir(p, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.isDirectory()) out.push(...(await expand([join(p, e.name)])));
      else if (IMAGE.test(e.name)) out.push(join(p, e.name));
    }
  }
  return out;
}

export async function classifyCli(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      'weights-key': { type: 'string' },
      backend: { type: 'string', default: 'onnx' },
      device: { type: 'string' },
      topk: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.model) throw new EffnetError('effnet classify needs --model <zoo name or checkpoint>');
  if (!positionals.length) throw new EffnetError('effnet classify needs at least one image or directory');
  const files = await expand(positionals);
  const classifier = await Classifier.load(values.model, { backend: values.backend as 'onnx', device: values.device as never, weightsKey: values['weights-key'] });
  try {
    const { results, errors } = await classifier.classify(files, { topK: Number(values.topk), skipErrors: true });
    if (values.json) {
      for (const r of results) out(JSON.stringify({ image: r.name, top: r.top.map((t) => ({ label: t.label, index: t.index, prob: t.prob })) }));
      for (const e of errors) out(JSON.stringify({ image: e.name, error: e.error.message }));
    } else {
      const rows = results.flatMap((r) => r.top.map((t, i) => [i === 0 ? r.name : '', i + 1, t.label ?? String(t.index), `${(100 * t.prob).toFixed(1)}%`]));
      out(formatTable(['image', 'rank', 'label', 'probability'], rows));
      for (const e of errors) out(`could not read ${e.name}: ${e.error.message}`);
    }
    return errors.length && !results.length ? 1 : 0;
  } finally {
    await classifier.dispose();
  }
}

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

export async function trainCli(args: string[], out: (s: string) => void, progress: ProgressSink = process.stderr): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string' },
      val: { type: 'string' },
      model: { type: 'string' },
      epochs: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      freeze: { type: 'string', default: 'none' },
      'label-smoothing': { type: 'string' },
      size: { type: 'string' },
      patience: { type: 'string' },
      resume: { type: 'boolean', default: false },
      seed: { type: 'string' },
      out: { type: 'string', default: 'effnet-out' },
      device: { type: 'string' },
      'crop-scale': { type: 'string' },
      dropout: { type: 'string' },
      'drop-path': { type: 'string' },
      'crop-pct': { type: 'string' },
    },
  });
  for (const req of ['data', 'model', 'epochs'] as const) if (!values[req]) throw new EffnetError(`effnet train needs --${req}\n\n${CLASSIFY_USAGE}`);
  const num = (k: string, v?: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new EffnetError(`--${k} needs a number, got "${v}"`);
    return n;
  };
  const cropScale = values['crop-scale']?.split(',').map(Number) as [number, number] | undefined;
  const r = await fineTune({
    data: values.data!,
    val: values.val,
    model: values.model!,
    epochs: num('epochs', values.epochs)!,
    batch: num('batch', values.batch),
    lr: num('lr', values.lr),
    freeze: values.freeze as FreezeMode,
    labelSmoothing: num('label-smoothing', values['label-smoothing']),
    size: num('size', values.size),
    patience: num('patience', values.patience),
    resume: values.resume,
    seed: num('seed', values.seed),
    out: values.out!,
    device: values.device as never,
    cropScale,
    cropPct: num('crop-pct', values['crop-pct']),
    dropout: num('dropout', values.dropout),
    dropPath: num('drop-path', values['drop-path']),
    onProgress: trainReporter(progress),
  });
  const m = r.card.metrics ?? {};
  out(`wrote ${join(r.out, 'model.safetensors')} and model.json (epoch ${r.card.epoch}${r.stoppedEarly ? ', stopped early: no better validation accuracy' : ''}); best.safetensors holds the best validation accuracy`);
  out(`validation accuracy ${(100 * (m.valAccuracy ?? Number.NaN)).toFixed(1)}%  (classes: ${r.card.classes.join(', ')})`);
  return 0;
}

export async function evalCli(args: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string' },
      weights: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string', default: 'onnx' },
      device: { type: 'string' },
      json: { type: 'boolean', default: false },
      heatmap: { type: 'string' },
    },
  });
  const model = values.weights ?? values.out;
  if (!values.data || !model) throw new EffnetError(`effnet eval needs --data and --weights (or --out)\n\n${CLASSIFY_USAGE}`);
  const heatmap = values.heatmap ?? 'confusion.png';
  const r = await evaluate({ data: values.data, model, backend: values.backend as 'onnx', device: values.device as never, heatmap });
  if (values.json) {
    out(JSON.stringify({ accuracy: r.accuracy, images: r.images, classes: r.classes, perClass: r.perClass, macro: r.macro, weighted: r.weighted, confusion: r.confusion, heatmap: r.heatmap, errors: r.errors }, null, 2));
    return 0;
  }
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  out(`accuracy ${pct(r.accuracy)} on ${r.images} images`);
  out('');
  out(
    formatTable(
      ['class', 'precision', 'recall', 'f1', 'support'],
      [
        ...r.perClass.map((c) => [c.class, pct(c.precision), pct(c.recall), pct(c.f1), c.support]),
        ['macro avg', pct(r.macro.precision), pct(r.macro.recall), pct(r.macro.f1), r.images],
        ['weighted avg', pct(r.weighted.precision), pct(r.weighted.recall), pct(r.weighted.f1), r.images],
      ],
    ),
  );
  out('');
  out('confusion matrix (rows: true class, columns: predicted)');
  out(formatTable(['', ...r.classes], r.confusion.map((row, i) => [r.classes[i]!, ...row])));
  if (r.heatmap) out(`\nwrote ${r.heatmap}`);
  for (const e of r.errors) out(`could not read ${e.name}: ${e.message}`);
  return 0;
}
