// int8 against fp32 in one run: each model exported both ways (int8 calibrated on generated images through the
// model's own preprocessing), then timed alternately by `effnet bench` at batch 8 (and 1), best of two rounds, each
// timing in a process of its own (ONNX Runtime sessions left in a process keep spinning thread pools, which slowed the
// next session timed there and made an earlier table of this bench overstate int8).
// Top-1 agreement and accuracy on held-out data for the trained model (effnet-shapes on fresh generated shapes).
// Usage: node bench/int8.mjs [--models effnet-shapes,efficientnet_b0,efficientnet_b3,efficientnetv2_s] [--threads 2]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Classifier, generateShapeDataset, scanImageFolder } from '@effnet/tasks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { models: { type: 'string', default: 'effnet-shapes,efficientnet_b0,efficientnet_b3,efficientnetv2_s' }, threads: { type: 'string', default: '2' }, batches: { type: 'string', default: '8,1' } } });
const work = join(root, 'bench', '.cache', 'int8');
mkdirSync(work, { recursive: true });
const effnet = (...args) => {
  const r = spawnSync(process.execPath, [join(root, 'packages/cli/bin/effnet.js'), ...args], { encoding: 'utf8', env: { ...process.env, EFFNET_COMPILE_CACHE: '0' } });
  if (r.status !== 0) throw new Error(`effnet ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const threads = Number(values.threads);
const rows = [];
const accuracy = [];
for (const model of values.models.split(',')) {
  const fp32 = join(work, `${model}-fp32.onnx`);
  const int8 = join(work, `${model}-int8.onnx`);
  const size = model === 'effnet-shapes' ? 48 : Number(JSON.parse(effnet('info', model, '--json')).resolution);
  const calib = join(work, `calib-${size}`);
  if (!existsSync(calib)) await generateShapeDataset(calib, { perClass: model === 'effnet-shapes' ? 16 : 4, size, seed: 77 });
  process.stderr.write(`${model}: exporting fp32 and int8 (calibrated on ${calib})...\n`);
  effnet('export', model, '-o', fp32, '--force');
  effnet('export', model, '--int8', '--calibration', calib, '-o', int8, '--force');
  for (const batch of values.batches.split(',').map(Number)) {
    const best = {};
    for (let round = 0; round < 2; round++)
      for (const [precision, file] of [['fp32', fp32], ['int8', int8]]) {
        process.stderr.write(`${model} batch ${batch}: ${precision} (round ${round + 1})...\n`);
        const r = JSON.parse(effnet('bench', '--model', file, '--batch', String(batch), '--threads', String(threads), '--warmup', '2', '--iterations', String(batch === 1 ? 20 : 8), '--json'));
        if (!best[precision] || r.medianMs < best[precision].medianMs) best[precision] = r;
      }
    for (const r of Object.values(best)) rows.push({ model, precision: r.precision, batch, resolution: r.resolution[0], imagesPerSecond: r.imagesPerSecond, medianMs: r.medianMs, p90Ms: r.p90Ms, peakRssMB: r.peakRssMB, randomWeights: r.randomWeights, loadAverage: r.machine.loadAverage });
    rows.push({ model, batch, int8VsFp32: best.int8.imagesPerSecond / best.fp32.imagesPerSecond });
  }
  if (model === 'effnet-shapes') {
    const held = join(work, 'heldout');
    if (!existsSync(held)) await generateShapeDataset(held, { perClass: 100, size: 48, seed: 20261202 });
    const folder = await scanImageFolder(held);
    const preds = {};
    for (const [precision, file] of [['fp32', fp32], ['int8', int8]]) {
      const c = await Classifier.load(file, { threads });
      const { results } = await c.classify(folder.samples.map((s) => s.path), { topK: 1, batchSize: 32 });
      preds[precision] = results.map((r) => r.top[0].label);
      await c.dispose();
    }
    const truth = folder.samples.map((s) => folder.classes[s.label]);
    const acc = (p) => p.filter((l, i) => l === truth[i]).length / truth.length;
    accuracy.push({ model, images: truth.length, fp32Top1: acc(preds.fp32), int8Top1: acc(preds.int8), agreement: preds.fp32.filter((l, i) => l === preds.int8[i]).length / truth.length });
  }
}
const out = { date: new Date().toISOString(), threads, loadAverage: loadavg()[0], rows, accuracy };
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'int8.json'), JSON.stringify(out, null, 2) + '\n');
for (const r of rows) console.log(JSON.stringify(r));
for (const a of accuracy) console.log(JSON.stringify(a));
