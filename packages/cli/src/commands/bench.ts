import { checkOutputFile, writeFileAtomic } from '@effnet/core';
import { defineCommand, type Io } from '../args.js';
import { bar, duration, redraw } from '../progress.js';
import { formatTable } from '../table.js';
import { BACKEND_OPTIONS, FORCE_OPTION, MODEL_HELP } from './common.js';

/** Warm-up and timed runs on stderr: a bar with the time left on a terminal, nothing per run otherwise. */
function benchReporter(io: Io): (done: number, total: number, phase: 'load' | 'run') => void {
  const start = Date.now();
  let runStart = start;
  return (done, total, phase) => {
    if (phase === 'load') {
      runStart = Date.now();
      io.progress.write(`loaded in ${duration((runStart - start) / 1000)}; ${total} runs\n`);
      return;
    }
    if (!io.progress.isTTY) return;
    const elapsed = (Date.now() - runStart) / 1000;
    redraw(io.progress, `${bar(done / total, 24)} ${done}/${total} runs, ${duration((elapsed / done) * (total - done))} left`);
    if (done === total) io.progress.write('\n');
  };
}

export const benchCommand = defineCommand({
  name: 'bench',
  summary: "a model's speed: median and p90 latency, images/s, peak memory, the device used",
  usage: 'effnet bench --model M [--task infer|train|detect|segment] [--batch B] [--resolution R] [--precision fp32|fp16|int8] [options]',
  options: {
    model: { type: 'string', required: true, valueName: 'M', description: 'a zoo entry, checkpoint, exported .onnx file or variant (random weights)' },
    task: { type: 'string', choices: ['infer', 'train', 'detect', 'segment'], default: 'infer', valueName: 'TASK', description: 'infer (the network), train (a training step; classifiers and segmenters), detect (network + post-processing), segment (network, logits resized to the image, argmax)' },
    batch: { type: 'number', integer: true, min: 1, max: 4096, default: 1, valueName: 'B', description: 'images per run' },
    resolution: { type: 'number', integer: true, min: 8, max: 8192, valueName: 'R', description: "input side (default the model's own)" },
    precision: { type: 'string', choices: ['fp32', 'fp16', 'int8'], valueName: 'P', description: 'fp16 compiles so on the onnx backend; an .onnx file runs at its own precision (int8: export with --int8)' },
    ...BACKEND_OPTIONS,
    warmup: { type: 'number', integer: true, min: 0, max: 1000, default: 3, valueName: 'N', description: 'untimed runs first' },
    iterations: { type: 'number', integer: true, min: 1, max: 100000, valueName: 'N', description: 'timed runs (default 20 at batch 1, else 10)' },
    json: { type: 'boolean', description: 'print the result as JSON' },
    out: { type: 'string', valueName: 'FILE', description: 'also write the JSON result here (e.g. bench/results/b0-int8.json)' },
    ...FORCE_OPTION,
  },
  notes: [MODEL_HELP, 'Peak RSS is the whole process (runtime, model, inputs). The same measuring code (@effnet/tasks benchmark) runs npm run bench.'],
  examples: ['effnet bench --model efficientnet_b0 --batch 8', 'effnet bench --model b0-int8.onnx --batch 8 --json', 'effnet bench --model effnet-shapes --task train --batch 32 --backend tfjs', 'effnet bench --model tf_efficientdet_d0 --task detect', 'effnet bench --model fpn_efficientnet_b0 --task segment --resolution 512'],
  async run({ values: v }, io) {
    const { benchmark } = await import('@effnet/tasks');
    if (v.out) await checkOutputFile(v.out, { force: v.force, flag: '--out' });
    const r = await benchmark({
      model: v.model,
      task: v.task as never,
      batch: v.batch,
      resolution: v.resolution,
      backend: v.backend as 'onnx' | 'tfjs',
      device: v.device as never,
      precision: v.precision as never,
      threads: v.threads,
      warmup: v.warmup,
      iterations: v.iterations,
      onProgress: benchReporter(io),
    });
    const json = JSON.stringify(r, null, 2);
    if (v.out) await writeFileAtomic(v.out, new TextEncoder().encode(json + '\n'));
    if (v.json) io.out(json);
    else {
      const f = (x: number, d = 1) => x.toFixed(d);
      io.out(
        formatTable(
          ['model', 'task', 'backend', 'device', 'precision', 'batch', 'input', 'median ms', 'p90 ms', 'images/s', 'peak RSS MB'],
          [[r.model, r.task, r.backend, r.device, r.precision, r.batch, r.resolution.join('x'), f(r.medianMs), f(r.p90Ms), f(r.imagesPerSecond, 2), f(r.peakRssMB, 0)]],
        ),
      );
      if (r.randomWeights) io.out('note: random weights (an architecture name): speed is the same as with trained ones');
      for (const n of r.notes) io.out(`note: ${n}`);
      io.out(`${r.iterations} timed runs after ${r.warmup} warm-up; load ${f(r.loadMs, 0)} ms; ${r.machine.cpu}, ${r.machine.cores} cores, load average ${f(r.machine.loadAverage, 2)}`);
      if (v.out) io.out(`wrote ${v.out}`);
    }
    return 0;
  },
});
