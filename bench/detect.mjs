// Detection speed: tf_efficientdet_d0 at 512 px, batch 1 and 8, the whole detect without preprocessing (network,
// top-k, decoding, class-aware NMS, 100 detections per image, img_info of the input's own size) on
//   - effnet: Detector.detect on ONNX Runtime (network) + the TypeScript post-processing,
//   - effnet: the model exported with NMS in the graph (effnet export --nms, score threshold 0), on ONNX Runtime,
//   - effdet: DetBenchPredict in PyTorch eager (bench/effdet_worker.py),
// all with the same weights (effdet's own initialisation, written once by the worker) and the same input, the same
// number of threads, in alternating rounds (the order flips every round). Also the network alone on ONNX Runtime, to
// show what the post-processing costs.
// Usage: npm run build && node bench/detect.mjs [--rounds 3] [--iters 6] [--iters8 2] [--threads 2]
// effdet comes from ../shared/peers (EFFNET_SHARED overrides; EFFNET_PEERS_PYTHONPATH skips the setup).
// Writes bench/results/detect.json.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileToOnnx } from '@effnet/backend-onnx';
import { float32Tensor } from '@effnet/core';
import { Detector, detectionNmsExtension } from '@effnet/tasks';
import ort from 'onnxruntime-node';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, iters: { type: 'string', default: '6' }, iters8: { type: 'string', default: '2' }, threads: { type: 'string', default: '2' } },
});
const ROUNDS = Number(values.rounds);
const THREADS = Number(values.threads);
const ITERS = { 1: Number(values.iters), 8: Number(values.iters8) };
const MODEL = 'tf_efficientdet_d0';
const PYTHON = process.env.EFFNET_PYTHON ?? '/usr/bin/python3';
const cache = join(root, 'bench', '.cache', 'detect');
mkdirSync(cache, { recursive: true });
const weights = join(cache, `${MODEL}.effdet-init.safetensors`);

function peersPath() {
  if (process.env.EFFNET_PEERS_PYTHONPATH) return process.env.EFFNET_PEERS_PYTHONPATH;
  const shared = process.env.EFFNET_SHARED ?? join(root, '..', 'shared');
  const r = spawnSync('bash', [join(shared, 'peers', 'setup.sh')], { encoding: 'utf8' });
  const m = /EFFNET_PEERS_PYTHONPATH=(\S+)/.exec(r.stdout ?? '');
  if (!m) throw new Error(`effdet not found: set EFFNET_SHARED to the directory with peers/ (or EFFNET_PEERS_PYTHONPATH)\n${r.stderr}`);
  return m[1];
}

/** The effdet worker: one process, asked for timings line by line. */
function startWorker() {
  const child = spawn(PYTHON, [join(root, 'bench', 'effdet_worker.py'), MODEL, weights, String(THREADS)], {
    env: { ...process.env, PYTHONPATH: peersPath(), OMP_NUM_THREADS: String(THREADS) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the effdet worker stopped');
    return JSON.parse(value);
  };
  return {
    ready: next(),
    async time(batch, iters) {
      child.stdin.write(`${batch} ${iters}\n`);
      return next();
    },
    stop() {
      child.stdin.write('quit\n');
      child.stdin.end();
    },
  };
}

/** sin(i) * 0.5 over the NCHW batch, as the worker's bench_input. */
function benchInput(batch, h, w) {
  const data = new Float32Array(batch * 3 * h * w);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 0.5;
  return float32Tensor([batch, 3, h, w], data);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timeIt(iters, fn) {
  await fn(); // warm-up
  const lat = [];
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  return lat;
}

process.stderr.write('starting the effdet worker (writes the shared weights on first use)...\n');
const worker = startWorker();
const info = await worker.ready;
const [H, W] = info.image_size;

const detector = await Detector.load(MODEL, { weights, weightsFormat: 'effdet', threads: THREADS });
const nmsModel = compileToOnnx(detector.model.graph, detector.model.weights, { extend: detectionNmsExtension(detector.model.graph, { scoreThreshold: 0 }) });
const session = await ort.InferenceSession.create(nmsModel.model, { executionProviders: ['cpu'], intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all' });

const inputs = { 1: benchInput(1, H, W), 8: benchInput(8, H, W) };
// One image per tensor, as Detector.detect takes them (already normalised: preprocessing excluded).
const perImage = (t) => Array.from({ length: t.shape[0] }, (_, i) => float32Tensor([3, H, W], t.data.subarray(i * 3 * H * W, (i + 1) * 3 * H * W)));

const runtimes = {
  'effnet ONNX + TS post-processing': (b) => timeIt(ITERS[b], () => detector.detect(perImage(inputs[b]), { score: 0, batchSize: b })),
  'effnet ONNX, NMS in the graph': (b) => timeIt(ITERS[b], () => session.run({ input: new ort.Tensor('float32', inputs[b].data, inputs[b].shape) })),
  'effdet DetBenchPredict (PyTorch eager)': async (b) => (await worker.time(b, ITERS[b])).latencies,
  'effnet ONNX network only': (b) => timeIt(ITERS[b], () => detector.headOutputs(inputs[b])),
};

const loadBefore = os.loadavg();
const samples = {};
const roundMedians = {};
for (let round = 0; round < ROUNDS; round++) {
  const order = Object.keys(runtimes);
  if (round % 2) order.reverse();
  for (const batch of [1, 8]) {
    for (const name of order) {
      process.stderr.write(`round ${round + 1}/${ROUNDS} batch ${batch}: ${name}...\n`);
      const lat = await runtimes[name](batch);
      const key = `${name}|${batch}`;
      (samples[key] ??= []).push(...lat);
      (roundMedians[key] ??= []).push(median(lat));
    }
  }
}
const loadAfter = os.loadavg();
worker.stop();
await detector.dispose();
await session.release();

const rows = Object.entries(samples).map(([key, lat]) => {
  const [runtime, batch] = key.split('|');
  const b = Number(batch);
  const med = median(lat);
  return { runtime, batch: b, medianMs: med, bestRoundMedianMs: Math.min(...roundMedians[key]), minMs: Math.min(...lat), samples: lat.length, imagesPerSecond: (1000 * b) / med };
});
const ref = (b) => rows.find((r) => r.runtime.startsWith('effdet') && r.batch === b);
for (const r of rows) r.speedupVsEffdet = ref(r.batch).medianMs / r.medianMs;

const result = {
  date: new Date().toISOString(),
  model: MODEL,
  imageSize: [H, W],
  threads: THREADS,
  rounds: ROUNDS,
  iterations: ITERS,
  weights: "effdet's own initialisation (torch.manual_seed(0)), the same file on both sides",
  conditions: {
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadAfter,
    node: process.version,
    onnxruntime: ort.env.versions?.common ?? 'unknown',
    torch: info.torch,
    note: 'a machine shared with other work: compare the ratios of one run, not absolute numbers',
  },
  rows,
};
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'detect.json'), JSON.stringify(result, null, 2) + '\n');
console.log(`${MODEL} at ${H}x${W}, ${THREADS} threads, ${ROUNDS} alternating rounds; load average ${loadBefore.map((v) => v.toFixed(2)).join(' ')} before, ${loadAfter.map((v) => v.toFixed(2)).join(' ')} after`);
console.log(`${'runtime'.padEnd(40)} batch  median ms  images/s  vs effdet`);
for (const r of rows.sort((a, b) => a.batch - b.batch))
  console.log(`${r.runtime.padEnd(40)} ${String(r.batch).padStart(5)}  ${r.medianMs.toFixed(1).padStart(9)}  ${r.imagesPerSecond.toFixed(2).padStart(8)}  ${r.speedupVsEffdet.toFixed(2)}x`);
