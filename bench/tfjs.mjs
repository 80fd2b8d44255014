// npm run bench (part 2): TensorFlow.js inference against our ONNX backend, and tfjs wasm training against PyTorch
// CPU training of the same architecture, all in one run on this machine. Writes bench/results/tfjs.json.
// Usage: node bench/tfjs.mjs [--quick]
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { OnnxBackend } from '@effnet/backend-onnx';
import { selectRuntime, TfjsBackend, TfjsModel, Trainer, tf } from '@effnet/backend-tfjs';
import { analyzeGraph, buildEfficientNet, compound, float32Tensor, randomWeights, specFor } from '@effnet/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const PYTHON = process.env.EFFNET_PYTHON ?? '/usr/bin/python3';
const THREADS = 2;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];

async function timeRunner(runner, batch, res, iters) {
  const x = float32Tensor([batch, 3, res, res]);
  (x.data).fill(0.1);
  await runner.run(x);
  const lat = [];
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    await runner.run(x);
    lat.push(performance.now() - t);
  }
  return lat;
}

// Inference: EfficientNet-B0 at 224.
const graph = buildEfficientNet(specFor('efficientnet_b0'));
const weights = randomWeights(graph);
const cases = [
  ['ONNX Runtime cpu (effnet ONNX backend)', () => new OnnxBackend().load(graph, weights, { threads: THREADS }), [1, 8]],
  ['tfjs wasm (SIMD)', () => new TfjsBackend().load(graph, weights, { device: 'wasm' }), [1, 8]],
  ['tfjs cpu (pure JS)', () => new TfjsBackend().load(graph, weights, { device: 'js' }), [1]],
];
for (const [runtime, load, batches] of cases) {
  const runner = await load();
  for (const batch of batches) {
    process.stderr.write(`B0 inference, ${runtime}, batch ${batch}...\n`);
    const iters = values.quick || runtime.includes('pure JS') ? 2 : batch === 1 ? 10 : 4;
    const lat = await timeRunner(runner, batch, 224, iters);
    rows.push({ kind: 'inference', model: 'efficientnet_b0', resolution: 224, batch, runtime, p50: median(lat), imagesPerSecond: (1000 * batch) / median(lat) });
  }
  await runner.dispose();
}

// Training: compound phi = -3 at 128 px, batch 16, AdamW, label smoothing, 10 classes.
const PHI = -3;
const BATCH = 16;
const RES = 128;
const STEPS = values.quick ? 2 : 4;
await selectRuntime('wasm');
const { spec } = compound({ phi: PHI });
const tg = buildEfficientNet(spec, { numClasses: 10, inputResolution: RES });
const model = new TfjsModel(tg, randomWeights(tg));
const trainer = new Trainer(model, { optimizer: { kind: 'adamw', lr: 1e-3, weightDecay: 0.01 }, labelSmoothing: 0.1 });
const x = tf.randomNormal([BATCH, RES, RES, 3]);
const labels = Int32Array.from({ length: BATCH }, (_, i) => i % 10);
process.stderr.write(`training phi=${PHI} ${RES}px batch ${BATCH} on tfjs wasm...\n`);
trainer.trainStep(x, labels);
const tlat = [];
for (let i = 0; i < STEPS; i++) {
  const t = performance.now();
  trainer.trainStep(x, labels);
  tlat.push(performance.now() - t);
}
rows.push({ kind: 'training', model: `compound phi=${PHI} (${analyzeGraph(tg).params.toLocaleString('en-US')} params)`, resolution: RES, batch: BATCH, runtime: 'tfjs wasm (SIMD)', p50: median(tlat), imagesPerSecond: (1000 * BATCH) / median(tlat) });
process.stderr.write('training on PyTorch CPU...\n');
const r = spawnSync(PYTHON, [join(root, 'bench', 'torch_train.py'), String(PHI), String(BATCH), String(RES), String(STEPS), String(THREADS)], { encoding: 'utf8' });
if (r.status === 0) {
  const t = JSON.parse(r.stdout.trim().split('\n').at(-1));
  rows.push({ kind: 'training', model: `compound phi=${PHI} (torchvision, ${t.params.toLocaleString('en-US')} params)`, resolution: RES, batch: BATCH, runtime: `PyTorch eager ${THREADS} threads`, p50: median(t.latencies), imagesPerSecond: (1000 * BATCH) / median(t.latencies) });
} else process.stderr.write(`PyTorch training skipped: ${r.stderr.split('\n').slice(-3).join(' ')}\n`);

const find = (kind, rt, batch) => rows.find((x) => x.kind === kind && x.runtime.startsWith(rt) && (batch === undefined || x.batch === batch));
const ratios = {
  inference_wasm_vs_onnx_b1: find('inference', 'tfjs wasm', 1).imagesPerSecond / find('inference', 'ONNX', 1).imagesPerSecond,
  inference_wasm_vs_onnx_b8: find('inference', 'tfjs wasm', 8).imagesPerSecond / find('inference', 'ONNX', 8).imagesPerSecond,
  inference_js_vs_onnx_b1: find('inference', 'tfjs cpu', 1).imagesPerSecond / find('inference', 'ONNX', 1).imagesPerSecond,
  ...(find('training', 'PyTorch') ? { training_wasm_vs_pytorch: find('training', 'tfjs wasm').imagesPerSecond / find('training', 'PyTorch').imagesPerSecond } : {}),
};
const table = [['kind', 'model', 'res', 'batch', 'runtime', 'images/s', 'p50 ms'], ...rows.map((x) => [x.kind, x.model, x.resolution, x.batch, x.runtime, x.imagesPerSecond.toFixed(2), x.p50.toFixed(0)])].map((x) => x.map(String));
const widths = table[0].map((_, i) => Math.max(...table.map((x) => x[i].length)));
const line = (x) => x.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(`TensorFlow.js vs ONNX Runtime and PyTorch (${THREADS} threads), median step\n`);
console.log([line(table[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...table.slice(1).map(line)].join('\n'));
console.log('\nratios of images/s');
for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(3)}`);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const out = join(root, 'bench', 'results', 'tfjs.json');
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), threads: THREADS, rows, ratios }, null, 2) + '\n');
console.log(`\nwrote ${out}`);
