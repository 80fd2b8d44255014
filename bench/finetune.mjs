#!/usr/bin/env node
// Fine-tuning the embedded effnet-shapes model on a small real dataset: effnet's default recipe (ONNX Runtime, and
// tfjs with --tfjs) against a PyTorch fine-tune of the same network from the same weights (torchvision's
// transfer-learning tutorial recipe, bench/torch_finetune.py), the same epochs. Prints a table and writes
// bench/results/finetune.json.
//   /usr/bin/python3 scripts/make_digits_folder.py /tmp/digits-folder
//   node bench/finetune.mjs /tmp/digits-folder [--epochs 6] [--tfjs] [-- extra effnet train flags]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, toTorchvision, writeSafetensors } from '@effnet/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const data = args[0];
if (!data) {
  console.error('usage: node bench/finetune.mjs DATA_DIR(with train/ and val/) [--epochs 6] [--tfjs] [-- effnet train flags]');
  process.exit(2);
}
const epochs = Number(args.includes('--epochs') ? args[args.indexOf('--epochs') + 1] : 6);
const extra = args.includes('--') ? args.slice(args.indexOf('--') + 1) : [];
const work = mkdtempSync(join(tmpdir(), 'effnet-finetune-bench-'));
const card = JSON.parse(readFileSync(join(root, 'packages/zoo/assets/effnet-shapes.json'), 'utf8'));
const { tensors } = await readSafetensors(join(root, 'packages/zoo/assets', card.weights));
const tvWeights = join(work, 'torchvision.safetensors');
await writeSafetensors(tvWeights, toTorchvision(card.spec, tensors));
const phi = Number(/phi(-?[\d.]+)/.exec(card.arch)[1]);
const p = card.preprocessing;

const rows = [];
const effnet = (backend) => {
  const out = join(work, `effnet-${backend}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'packages/cli/bin/effnet.js'), 'train', '--data', join(data, 'train'), '--val', join(data, 'val'), '--model', 'effnet-shapes', '--epochs', String(epochs), '--backend', backend, '--out', out, ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`effnet train failed: ${r.stderr}`);
  const c = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  const history = c.history.map((h) => h.valAccuracy);
  rows.push({ run: `effnet defaults (${backend})`, recipe: c.training.recipe.summary, valAccuracy: history.at(-1), best: Math.max(...history), history, seconds: (Date.now() - t0) / 1000 });
};
const torch = (recipe) => {
  const out = execFileSync('/usr/bin/python3', [join(root, 'bench/torch_finetune.py'), tvWeights, String(phi), join(data, 'train'), join(data, 'val'), String(epochs), String(p.inputSize), JSON.stringify(p.mean), JSON.stringify(p.std), recipe], { encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').at(-1));
  rows.push({ run: `PyTorch 1.13 (${recipe})`, ...r, recipe: recipe === 'adam' ? 'adam lr 1e-3, StepLR(7, 0.1), RandomResizedCrop(0.08-1) + flips' : 'sgd lr 1e-3 momentum 0.9, StepLR(7, 0.1), RandomResizedCrop(0.08-1) + flips' });
};

const runs = [() => effnet('onnx'), ...(args.includes('--tfjs') ? [() => effnet('tfjs')] : []), () => torch('tutorial'), () => torch('adam')];
for (const run of runs) {
  run();
  console.error(`${rows.at(-1).run}: ${(100 * rows.at(-1).valAccuracy).toFixed(1)}%`);
}
console.log(`| run | recipe | val accuracy after ${epochs} epochs | best epoch | minutes |`);
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.run} | ${r.recipe} | ${(100 * r.valAccuracy).toFixed(1)}% | ${(100 * r.best).toFixed(1)}% | ${(r.seconds / 60).toFixed(1)} |`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/finetune.json'), `${JSON.stringify({ date: new Date().toISOString(), data, epochs, extra, loadAverage: loadavg(), rows }, null, 2)}\n`);
