// Training speed and memory: effnet's ONNX Runtime trainer (NCHWc depthwise kernels and standard operators only)
// against PyTorch eager and the tfjs wasm trainer, on the same architecture, batch and threads, in one run on this
// machine. Each runtime runs in a process of its own (peak RSS is its own), in alternating rounds; the best round's
// median step counts. Compare the ratios, not the absolute numbers: these machines are shared and noisy.
// Usage: node bench/train.mjs [--model efficientnet_b0] [--resolution 128] [--batch 16] [--threads 2] [--steps 10]
//        [--rounds 2] [--runtimes onnx,onnx-standard,torch,tfjs] [--tfjs-steps 3]
// Writes bench/results/train.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { analyzeGraph, buildEfficientNet, specFor } from '@effnet/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'efficientnet_b0' },
    resolution: { type: 'string', default: '128' },
    batch: { type: 'string', default: '16' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    runtimes: { type: 'string', default: 'onnx,onnx-standard,torch,tfjs' },
    'tfjs-steps': { type: 'string', default: '3' },
  },
});
const PYTHON = process.env.EFFNET_PYTHON ?? '/usr/bin/python3';
const { model, resolution, batch, threads } = values;
// torch_train.py builds torchvision's EfficientNet for a compound phi: B0..B7 are phi 0..7.
const phi = /^efficientnet_b(\d)$/.exec(model)?.[1];
const LABELS = {
  onnx: 'effnet ONNX Runtime (NCHWc depthwise)',
  'onnx-standard': 'effnet ONNX Runtime (standard ops)',
  torch: `PyTorch eager`,
  tfjs: 'effnet tfjs wasm',
};

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, OMP_NUM_THREADS: threads } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

const run = {
  onnx: () => sh(process.execPath, [join(root, 'bench', 'train-worker.mjs'), 'onnx', model, batch, resolution, values.steps, threads]),
  'onnx-standard': () => sh(process.execPath, [join(root, 'bench', 'train-worker.mjs'), 'onnx-standard', model, batch, resolution, values.steps, threads]),
  torch: () => {
    if (phi === undefined) throw new Error(`bench/torch_train.py builds torchvision's B0..B7 only, not ${model}`);
    return sh(PYTHON, [join(root, 'bench', 'torch_train.py'), phi, batch, resolution, values.steps, threads]);
  },
  tfjs: () => sh(process.execPath, [join(root, 'bench', 'train-worker.mjs'), 'tfjs', model, batch, resolution, values['tfjs-steps'], threads]),
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const runtimes = values.runtimes.split(',');
const best = {};
const load = [];
for (let round = 0; round < Number(values.rounds); round++) {
  const order = round % 2 ? [...runtimes].reverse() : runtimes;
  for (const rt of order) {
    // tfjs wasm takes seconds per step: one round is enough to place it.
    if (rt === 'tfjs' && best.tfjs) continue;
    process.stderr.write(`${model} ${resolution}px batch ${batch}: ${LABELS[rt]} (round ${round + 1})...\n`);
    load.push(loadavg()[0]);
    const r = run[rt]();
    const row = { runtime: LABELS[rt], key: rt, p50: median(r.latencies), imagesPerSecond: (1000 * Number(batch)) / median(r.latencies), peakRssMB: r.peakRssMB, steps: r.latencies.length, latencies: r.latencies, notes: r.notes ?? [] };
    if (!best[rt] || row.p50 < best[rt].p50) best[rt] = row;
  }
}

const rows = runtimes.map((rt) => best[rt]);
const torch = best.torch;
const ratios = {};
if (torch)
  for (const r of rows) if (r !== torch) ratios[r.key] = { throughputVsTorch: r.imagesPerSecond / torch.imagesPerSecond, peakRssVsTorch: r.peakRssMB / torch.peakRssMB };
const graph = buildEfficientNet(specFor(model, { family: 'torchvision' }), { numClasses: 10, inputResolution: Number(resolution) });
const table = [
  ['runtime', 'images/s', 'median step ms', 'peak RSS MB', 'vs PyTorch (speed)', 'vs PyTorch (memory)'],
  ...rows.map((r) => [r.runtime, r.imagesPerSecond.toFixed(2), r.p50.toFixed(0), r.peakRssMB.toFixed(0), ratios[r.key] ? `${ratios[r.key].throughputVsTorch.toFixed(2)}x` : '', ratios[r.key] ? `${ratios[r.key].peakRssVsTorch.toFixed(2)}x` : '']),
];
const widths = table[0].map((_, i) => Math.max(...table.map((x) => x[i].length)));
const line = (x) => x.map((c, i) => c.padEnd(widths[i])).join('  ');
const params = analyzeGraph(graph).params;
console.log(`Training ${model} (${params.toLocaleString('en-US')} params, 10 classes) at ${resolution} px, batch ${batch}, AdamW, ${threads} threads; best of ${values.rounds} alternating rounds\n`);
console.log([line(table[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...table.slice(1).map(line)].join('\n'));
console.log(`\n1-minute load average during the runs: ${load.map((l) => l.toFixed(1)).join(', ')} on ${cpus().length} CPUs`);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const out = join(root, 'bench', 'results', 'train.json');
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), model, resolution: Number(resolution), batch: Number(batch), threads: Number(threads), optimizer: 'adamw', cpus: cpus().length, loadAverage: load, rows, ratios }, null, 2) + '\n');
console.log(`wrote ${out}`);
