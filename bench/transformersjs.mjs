// The peer comparison: whole-process image classification of the same photos with the same weights by
// `effnet classify` and by Transformers.js (its image-classification pipeline, on the onnxruntime-node CPU provider).
// Transformers.js is not a dependency of this repository: install it outside, then point TJS_DIR at it, e.g.
//   npm i --prefix /tmp/tjs @huggingface/transformers@4.3.2 --ignore-scripts   (onnxruntime-node's CPU provider ships
//   in its package; its install script only fetches CUDA)
//   TJS_DIR=/tmp/tjs node bench/transformersjs.mjs [--runs 3]
// The model is efficientnet_b0 with seeded random weights, compiled once by effnet and given to both as the same
// ONNX graph (for Transformers.js with its input named pixel_values, in a local model folder with a config.json and a
// preprocessor_config.json describing timm's eval transform). Photos: bench/classify.mjs's set (run it first).
// Writes bench/results/transformersjs.json.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileToOnnx } from '@effnet/backend-onnx';
import { loadModelWeights, onnxExportMetadata } from '@effnet/tasks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const tjs = process.env.TJS_DIR;
if (!tjs || !existsSync(join(tjs, 'node_modules/@huggingface/transformers'))) {
  console.error('set TJS_DIR to a folder where @huggingface/transformers is installed (see the top of this file)');
  process.exit(2);
}
const work = join(root, 'bench', '.cache', 'classify');
const photos = join(work, 'photos');
if (!existsSync(photos)) throw new Error('run node bench/classify.mjs first (it writes the photos)');
const files = readdirSync(photos).sort().map((f) => join(photos, f));

// One ONNX graph for both: effnet's export, and the same graph with its input renamed for Transformers.js.
const m = await loadModelWeights('efficientnet_b0');
const effnetModel = join(work, 'tjs-effnet-b0.onnx');
writeFileSync(effnetModel, compileToOnnx(m.graph, m.weights, { metadata: onnxExportMetadata(m, { file: effnetModel }) }).model);
const inputName = m.graph.inputs[0].name;
const renamed = { ...m.graph, inputs: [{ ...m.graph.inputs[0], name: 'pixel_values' }], nodes: m.graph.nodes.map((n) => ({ ...n, inputs: n.inputs.map((i) => (i === inputName ? 'pixel_values' : i)) })) };
const modelDir = join(work, 'tjs-models', 'effnet-b0');
mkdirSync(join(modelDir, 'onnx'), { recursive: true });
writeFileSync(join(modelDir, 'onnx', 'model.onnx'), compileToOnnx(renamed, m.weights).model);
const labels = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [String(i), `class ${i}`]));
writeFileSync(join(modelDir, 'config.json'), JSON.stringify({ model_type: 'efficientnet', architectures: ['EfficientNetForImageClassification'], num_labels: 1000, id2label: labels, label2id: Object.fromEntries(Object.entries(labels).map(([k, v]) => [v, Number(k)])) }));
const p = m.preprocessing;
writeFileSync(
  join(modelDir, 'preprocessor_config.json'),
  JSON.stringify({
    image_processor_type: 'EfficientNetImageProcessor',
    include_top: false, // else Transformers.js squares the std, as Hugging Face's EfficientNet processor does
    do_resize: true,
    size: { shortest_edge: Math.floor(p.inputSize / (p.cropPct ?? 0.875)) },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: p.inputSize, width: p.inputSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: p.mean,
    image_std: p.std,
  }),
);
const tjsScript = join(work, 'tjs-classify.mjs');
writeFileSync(
  tjsScript,
  `import { env, pipeline } from ${JSON.stringify(join(tjs, 'node_modules/@huggingface/transformers/dist/transformers.node.mjs'))};
env.allowRemoteModels = false;
env.localModelPath = ${JSON.stringify(join(work, 'tjs-models'))};
const classify = await pipeline('image-classification', 'effnet-b0', { device: 'cpu', dtype: 'fp32' });
const out = await classify(process.argv.slice(2), { top_k: 1 });
for (const r of out) console.log(JSON.stringify(r));
`,
);
const time = (cmd, args, env = {}) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, stdout: r.stdout };
};
const bin = join(root, 'packages/cli/bin/effnet.js');
const cache = join(work, 'cache');
const runners = {
  'effnet classify (defaults: fast resize, cache)': (images) => time(process.execPath, [bin, 'classify', ...images, '--model', effnetModel, '--json', '--topk', '1'], { EFFNET_CACHE: cache }),
  'Transformers.js 4.3.2 pipeline': (images) => time(process.execPath, [tjsScript, ...images]),
};
// The effnet model file above is written anew on every run (its card records when), so the compiled-model cache has
// not seen it: one untimed run fills the cache, as a user's first run would, and the timed runs are the warm path.
runners['effnet classify (defaults: fast resize, cache)'](files.slice(0, 1));
const rows = [];
for (const images of [files, files.slice(0, 1)])
  for (let round = 0; round < Number(values.runs); round++)
    for (const [runtime, run] of Object.entries(runners)) {
      const r = run(images);
      rows.push({ runtime, images: images.length, seconds: r.seconds, imagesPerSecond: images.length / r.seconds });
    }
// The two must agree on what they computed: top-1 class of every photo.
const ours = runners['effnet classify (defaults: fast resize, cache)'](files).stdout.trim().split('\n').map((l) => JSON.parse(l).top[0].label);
const theirs = runners['Transformers.js 4.3.2 pipeline'](files).stdout.trim().split('\n').map((l) => JSON.parse(l)[0]?.label ?? JSON.parse(l).label);
const agreement = ours.filter((l, i) => l === theirs[i]).length / ours.length;
const best = {};
for (const r of rows) if (!best[`${r.runtime}|${r.images}`] || r.seconds < best[`${r.runtime}|${r.images}`].seconds) best[`${r.runtime}|${r.images}`] = r;
const out = { date: new Date().toISOString(), loadAverage: loadavg()[0], model: 'efficientnet_b0 (seeded random weights, one ONNX graph)', top1Agreement: agreement, best: Object.values(best), rows };
writeFileSync(join(root, 'bench', 'results', 'transformersjs.json'), JSON.stringify(out, null, 2) + '\n');
for (const r of Object.values(best)) console.log(`${r.runtime.padEnd(48)} ${String(r.images).padStart(3)} images  ${r.seconds.toFixed(2)} s  ${r.imagesPerSecond.toFixed(1)} img/s`);
console.log(`top-1 agreement ${(100 * agreement).toFixed(1)}%; load average ${loadavg()[0].toFixed(2)}`);
