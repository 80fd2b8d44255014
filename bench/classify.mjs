// Whole-process `effnet classify` on ~40 real photos (and on one): the exact path without the compiled-model cache
// (what every run cost before), against the fast path (libvips resize, batches overlapped with inference, cache warm).
// The photos are the sample photographs Debian ships with scikit-image, scikit-learn and matplotlib, each also
// flipped, cropped and re-encoded at another size (4 files per photo). Writes bench/results/classify.json.
// Usage: node bench/classify.mjs [--model efficientnet_b0] [--runs 3]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { model: { type: 'string', default: 'efficientnet_b0' }, runs: { type: 'string', default: '3' } } });
const SOURCES = [
  '/usr/lib/python3/dist-packages/skimage/data/astronaut.png',
  '/usr/lib/python3/dist-packages/skimage/data/chelsea.png',
  '/usr/lib/python3/dist-packages/skimage/data/coffee.png',
  '/usr/lib/python3/dist-packages/skimage/data/motorcycle_left.png',
  '/usr/lib/python3/dist-packages/skimage/data/rocket.jpg',
  '/usr/lib/python3/dist-packages/skimage/data/retina.jpg',
  '/usr/lib/python3/dist-packages/skimage/data/hubble_deep_field.jpg',
  '/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg',
  '/usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg',
  '/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg',
].filter(existsSync);
const work = join(root, 'bench', '.cache', 'classify');
const photos = join(work, 'photos');
mkdirSync(photos, { recursive: true });
for (const src of SOURCES) {
  const stem = basename(src).replace(/\.[^.]+$/, '');
  const img = sharp(src).removeAlpha();
  const { width, height } = await img.metadata();
  await img.clone().jpeg({ quality: 90 }).toFile(join(photos, `${stem}-0.jpg`));
  await img.clone().flop().jpeg({ quality: 85 }).toFile(join(photos, `${stem}-1.jpg`));
  await img.clone().extract({ left: Math.floor(width / 8), top: Math.floor(height / 8), width: Math.floor((width * 3) / 4), height: Math.floor((height * 3) / 4) }).jpeg({ quality: 90 }).toFile(join(photos, `${stem}-2.jpg`));
  await img.clone().resize(Math.round(width * 1.5)).jpeg({ quality: 92 }).toFile(join(photos, `${stem}-3.jpg`));
}
const bin = join(root, 'packages/cli/bin/effnet.js');
const model = join(work, `${values.model}.onnx`);
const cache = join(work, 'cache');
const effnet = (args, env = {}) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, EFFNET_CACHE: cache, ...env } });
  if (r.status !== 0) throw new Error(`effnet ${args.join(' ')}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
};
effnet(['export', values.model, '-o', model, '--force']);
const one = join(photos, `${basename(SOURCES[0]).replace(/\.[^.]+$/, '')}-0.jpg`);
const configs = {
  'exact resize, no compiled-model cache, batch 16': { args: ['--resize', 'exact', '--batch', '16'], env: { EFFNET_COMPILE_CACHE: '0' } },
  'fast resize, cache warm, default batch (the default path)': { args: [], env: {} },
};
const n = SOURCES.length * 4;
const rows = [];
for (const [input, count] of [[photos, n], [one, 1]])
  for (let round = 0; round < Number(values.runs); round++)
    for (const [name, c] of Object.entries(configs)) {
      const s = effnet(['classify', input, '--model', model, '--json', '--topk', '1', ...c.args], c.env);
      rows.push({ config: name, images: count, seconds: s, imagesPerSecond: count / s });
    }
const best = {};
for (const r of rows) {
  const k = `${r.config} | ${r.images}`;
  if (!best[k] || r.seconds < best[k].seconds) best[k] = r;
}
const out = { date: new Date().toISOString(), model: values.model, loadAverage: loadavg()[0], photos: SOURCES.map((s) => basename(s)), best: Object.values(best), rows };
writeFileSync(join(root, 'bench', 'results', 'classify.json'), JSON.stringify(out, null, 2) + '\n');
for (const r of Object.values(best)) console.log(`${r.config.padEnd(50)} ${String(r.images).padStart(3)} images  ${r.seconds.toFixed(2)} s  ${r.imagesPerSecond.toFixed(1)} img/s`);
console.log(`load average ${loadavg()[0].toFixed(2)}`);
