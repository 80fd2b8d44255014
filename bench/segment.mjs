// Segmentation speed: U-Net, FPN and DeepLabV3+ on EfficientNet-B0 (3 classes) at 512 px, batch 1 and 4, the network
// alone (logits at the input size), on
//   - effnet: the segmenter graph compiled to ONNX, on ONNX Runtime (the effnet ONNX backend),
//   - smp: the same model in PyTorch eager (bench/smp_worker.py),
// with the same weights (smp's own initialisation, written once by the worker), the same input and the same number
// of threads, in alternating rounds (the order flips every round). Peak memory (RSS) of each process is reported.
// Usage: npm run build && node bench/segment.mjs [--models unet,fpn,deeplabv3plus] [--rounds 2] [--iters 3] [--threads 2]
// smp comes from ../shared/peers (EFFNET_SHARED overrides; EFFNET_PEERS_PYTHONPATH skips the setup).
// Writes bench/results/segment.json.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { OnnxBackend } from '@effnet/backend-onnx';
import { buildSegmenter, float32Tensor, readSafetensors, segmenterConfig } from '@effnet/core';
import ort from 'onnxruntime-node';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { models: { type: 'string', default: 'unet,fpn,deeplabv3plus' }, rounds: { type: 'string', default: '2' }, iters: { type: 'string', default: '3' }, threads: { type: 'string', default: '2' }, size: { type: 'string', default: '512' } },
});
const ROUNDS = Number(values.rounds);
const ITERS = Number(values.iters);
const THREADS = Number(values.threads);
const SIZE = Number(values.size);
const CLASSES = 3;
const BATCHES = [1, 4];
const PYTHON = process.env.EFFNET_PYTHON ?? '/usr/bin/python3';
const cache = join(root, 'bench', '.cache', 'segment');
mkdirSync(cache, { recursive: true });

function peersPath() {
  if (process.env.EFFNET_PEERS_PYTHONPATH) return process.env.EFFNET_PEERS_PYTHONPATH;
  const shared = process.env.EFFNET_SHARED ?? join(root, '..', 'shared');
  const r = spawnSync('bash', [join(shared, 'peers', 'setup.sh')], { encoding: 'utf8' });
  const m = /EFFNET_PEERS_PYTHONPATH=(\S+)/.exec(r.stdout ?? '');
  if (!m) throw new Error(`smp not found: set EFFNET_SHARED to the directory with peers/ (or EFFNET_PEERS_PYTHONPATH)\n${r.stderr}`);
  return m[1];
}

function startWorker(model, weights) {
  const child = spawn(PYTHON, [join(root, 'bench', 'smp_worker.py'), model, String(CLASSES), weights, String(THREADS), String(SIZE)], {
    env: { ...process.env, PYTHONPATH: `${peersPath()}:${join(root, 'scripts')}`, OMP_NUM_THREADS: String(THREADS) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the smp worker stopped');
    return JSON.parse(value);
  };
  return {
    ready: next(),
    time: (batch, iters) => (child.stdin.write(`${batch} ${iters}\n`), next()),
    stop() {
      child.stdin.write('quit\n');
      child.stdin.end();
    },
  };
}

function benchInput(batch) {
  const data = new Float32Array(batch * 3 * SIZE * SIZE);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 0.5;
  return float32Tensor([batch, 3, SIZE, SIZE], data);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const loadBefore = os.loadavg();
const rows = [];
let torchVersion = 'unknown';
for (const decoder of values.models.split(',')) {
  const model = `${decoder}_efficientnet_b0`;
  const weights = join(cache, `${model}.smp-init.safetensors`);
  process.stderr.write(`${model}: starting the smp worker...\n`);
  const worker = startWorker(model, weights);
  torchVersion = (await worker.ready).torch;
  const graph = buildSegmenter(segmenterConfig(model), { numClasses: CLASSES, inputResolution: null });
  const runner = await new OnnxBackend().load(graph, (await readSafetensors(weights)).tensors, { device: 'cpu', threads: THREADS });
  const samples = {};
  let smpPeak = 0;
  for (let round = 0; round < ROUNDS; round++)
    for (const batch of BATCHES) {
      const x = benchInput(batch);
      const order = round % 2 ? ['smp', 'effnet'] : ['effnet', 'smp'];
      for (const who of order) {
        process.stderr.write(`${model} round ${round + 1}/${ROUNDS} batch ${batch}: ${who}\n`);
        let lat;
        if (who === 'smp') {
          const r = await worker.time(batch, ITERS);
          smpPeak = Math.max(smpPeak, r.peakRssMB);
          lat = r.latencies;
        } else {
          await runner.run(x);
          lat = [];
          for (let i = 0; i < ITERS; i++) {
            const t = performance.now();
            await runner.run(x);
            lat.push(performance.now() - t);
          }
        }
        (samples[`${who}|${batch}`] ??= []).push(...lat);
      }
    }
  worker.stop();
  await runner.dispose();
  const effnetPeak = process.resourceUsage().maxRSS / 1024;
  for (const batch of BATCHES) {
    const e = median(samples[`effnet|${batch}`]);
    const s = median(samples[`smp|${batch}`]);
    rows.push({ model, batch, effnetOnnxMedianMs: e, smpEagerMedianMs: s, speedupOnnxVsSmp: s / e, effnetImagesPerSecond: (1000 * batch) / e, smpImagesPerSecond: (1000 * batch) / s, effnetPeakRssMB: effnetPeak, smpPeakRssMB: smpPeak });
  }
}
const loadAfter = os.loadavg();
const result = {
  date: new Date().toISOString(),
  imageSize: SIZE,
  classes: CLASSES,
  threads: THREADS,
  rounds: ROUNDS,
  iterations: ITERS,
  weights: "smp's own initialisation (torch.manual_seed(0)), the same file on both sides",
  memory: 'peak RSS of each process (node: the whole bench process so far, models built in turn; smp: its worker)',
  conditions: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter, node: process.version, onnxruntime: ort.env.versions?.common ?? 'unknown', torch: torchVersion, note: 'a machine shared with other work: compare the ratios of one run, not absolute numbers' },
  rows,
};
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'segment.json'), JSON.stringify(result, null, 2) + '\n');
console.log(`segmenters at ${SIZE}x${SIZE}, ${THREADS} threads; load average ${loadBefore.map((v) => v.toFixed(2)).join(' ')} before, ${loadAfter.map((v) => v.toFixed(2)).join(' ')} after`);
console.log(`${'model'.padEnd(32)} batch  ONNX ms  smp ms  ONNX/smp speed  RSS MB (ONNX, smp)`);
for (const r of rows)
  console.log(`${r.model.padEnd(32)} ${String(r.batch).padStart(5)}  ${r.effnetOnnxMedianMs.toFixed(0).padStart(7)}  ${r.smpEagerMedianMs.toFixed(0).padStart(6)}  ${r.speedupOnnxVsSmp.toFixed(2).padStart(14)}x  ${r.effnetPeakRssMB.toFixed(0)}, ${r.smpPeakRssMB.toFixed(0)}`);
