// EfficientDet post-processing speed on D0-sized head outputs (512 px, 90 classes, 49104 anchors, 4.4M logits):
// postprocessDetections (top-5000, decode, batched NMS or soft-NMS, 100 detections) per image, batch 1 and 8, and,
// with --effdet, effdet's _post_process + _batch_detection on the same outputs under Debian's PyTorch (2 threads;
// without img_info, as effdet's predict bench runs by default).
// Logits ~ N(-4, 1.5) as a trained head's mostly-background outputs, box codes ~ N(0, 0.5).
// Usage: npm run build && node bench/detect-postprocess.mjs [--effdet] [--runs 15]
// Writes bench/results/detect-postprocess.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { float32Tensor, seededNormal, writeNpy } from '@effnet/core';
import { EFFDET_ANCHOR_DEFAULTS, generateAnchors, postprocessDetections } from '@effnet/tasks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { effdet: { type: 'boolean', default: false }, runs: { type: 'string', default: '15' } } });
const runs = Number(values.runs);
const SIZE = 512;
const C = 90;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

let t0 = performance.now();
const anchors = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: SIZE });
const anchorMs = performance.now() - t0;

function outputs(batch, seed) {
  const normal = seededNormal(seed);
  const A = anchors.anchorsPerLocation;
  const cls = anchors.levels.map((l) => float32Tensor([batch, A * C, l.height, l.width], Float32Array.from({ length: batch * A * C * l.height * l.width }, () => -4 + 1.5 * normal())));
  const box = anchors.levels.map((l) => float32Tensor([batch, A * 4, l.height, l.width], Float32Array.from({ length: batch * A * 4 * l.height * l.width }, () => 0.5 * normal())));
  return { cls, box };
}

function time(fn) {
  fn(); // warm-up
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    ms.push(performance.now() - t);
  }
  return { medianMs: median(ms), minMs: Math.min(...ms), runs };
}

const rows = [];
for (const batch of [1, 8]) {
  const { cls, box } = outputs(batch, 42 + batch);
  const nms = time(() => postprocessDetections(cls, box, { anchors, numClasses: C }));
  rows.push({ runtime: 'effnet TypeScript', method: 'nms', batch, ...nms, perImageMs: nms.medianMs / batch });
  if (batch === 1) {
    const soft = time(() => postprocessDetections(cls, box, { anchors, numClasses: C, softNms: true }));
    rows.push({ runtime: 'effnet TypeScript', method: 'soft-nms', batch, ...soft, perImageMs: soft.medianMs / batch });
    // With img_info (boxes clipped to the image, so classes never interact and soft-NMS runs class by class).
    const imageInfo = [{ imgScale: 1, imgSize: [SIZE, SIZE] }];
    const clipped = time(() => postprocessDetections(cls, box, { anchors, numClasses: C, softNms: true, imageInfo }));
    rows.push({ runtime: 'effnet TypeScript', method: 'soft-nms, clipped', batch, ...clipped, perImageMs: clipped.medianMs / batch });
  }
  if (values.effdet) {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-bench-det-'));
    await Promise.all([...cls.map((t, l) => writeNpy(join(dir, `class_${l}.npy`), t)), ...box.map((t, l) => writeNpy(join(dir, `box_${l}.npy`), t))]);
    const script = `
import sys, time, numpy as np, torch
from effdet.anchors import Anchors
from effdet.bench import _post_process, _batch_detection
torch.set_num_threads(2)
d, runs, C = sys.argv[1], int(sys.argv[2]), ${C}
cls = [torch.from_numpy(np.load(f'{d}/class_{l}.npy')) for l in range(5)]
box = [torch.from_numpy(np.load(f'{d}/box_{l}.npy')) for l in range(5)]
anchors = Anchors(3, 7, 3, [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)], 4.0, (${SIZE}, ${SIZE}))
def run(soft):
    c, b, i, k = _post_process(cls, box, 5, C, 5000)
    return _batch_detection(cls[0].shape[0], c, b, anchors.boxes, i, k, None, None, 100, soft)
for soft in ([False, True] if cls[0].shape[0] == 1 else [False]):
    run(soft)
    ms = []
    for _ in range(runs if not soft else 3):
        t = time.perf_counter(); run(soft); ms.append((time.perf_counter() - t) * 1000)
    print('soft-nms' if soft else 'nms', sorted(ms)[len(ms) // 2], min(ms), len(ms))
`;
    const r = spawnSync(process.env.EFFNET_PYTHON ?? '/usr/bin/python3', ['-c', script, dir, String(runs)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
    rmSync(dir, { recursive: true, force: true });
    if (r.status !== 0) throw new Error(`effdet timing failed (set PYTHONPATH to the peers, see ../shared/peers/setup.sh):\n${r.stderr}`);
    for (const line of r.stdout.trim().split('\n')) {
      const [method, med, min, n] = line.split(' ');
      rows.push({ runtime: 'effdet (PyTorch 2 threads)', method, batch, medianMs: Number(med), minMs: Number(min), runs: Number(n), perImageMs: Number(med) / batch });
    }
  }
}

const result = { date: new Date().toISOString(), node: process.version, imageSize: SIZE, numClasses: C, anchors: anchors.count, anchorGenerationMs: anchorMs, rows };
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'detect-postprocess.json'), JSON.stringify(result, null, 2) + '\n');
for (const r of rows) console.log(`${r.runtime.padEnd(28)} ${r.method.padEnd(17)} batch ${r.batch}: median ${r.medianMs.toFixed(1)} ms (${r.perImageMs.toFixed(1)} ms/image, min ${r.minMs.toFixed(1)})`);
console.log(`anchors: ${anchors.count} generated in ${anchorMs.toFixed(1)} ms`);
