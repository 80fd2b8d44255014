// Reading EfficientNet-B7's state_dict (random weights, torchvision layout, ~266 MB) in Node from a PyTorch checkpoint
// (.pth, zip and legacy formats, written by torch.save) and from safetensors holding the same tensors. The target is
// .pth at most 2x safetensors. "read" is file to tensors (what readPth/readSafetensors do); "parse" starts from the
// bytes in memory. Rounds alternate the formats; the table shows the best and the median round.
// Usage: node bench/pth-read.mjs [--rounds 5] [--variant efficientnet_b7]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parsePth, parseSafetensors, readPth, readSafetensors } from '@effnet/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, variant: { type: 'string', default: 'efficientnet_b7' } } });
const PYTHON = process.env.EFFNET_PYTHON ?? '/usr/bin/python3';
const dir = join(root, 'bench', '.cache', `pth-read-${values.variant}`);
const files = { safetensors: join(dir, 'weights.safetensors'), 'pth (zip)': join(dir, 'weights.zip.pth'), 'pth (legacy)': join(dir, 'weights.legacy.pth') };

if (!Object.values(files).every((f) => existsSync(f))) {
  mkdirSync(dir, { recursive: true });
  process.stderr.write(`writing ${values.variant}'s random state_dict as safetensors and .pth into ${dir}...\n`);
  const py = `
import sys, torch, torchvision
sys.path.insert(0, ${JSON.stringify(join(root, 'scripts'))})
import torchvision_reference as ref
torch.manual_seed(0)
sd = getattr(torchvision.models, ${JSON.stringify(values.variant)})(weights=None).state_dict()
ref.write_safetensors(${JSON.stringify(files.safetensors)}, sd)
torch.save(sd, ${JSON.stringify(files['pth (zip)'])})
torch.save(sd, ${JSON.stringify(files['pth (legacy)'])}, _use_new_zipfile_serialization=False)
`;
  const r = spawnSync(PYTHON, ['-c', py], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  if (r.status !== 0) throw new Error(`writing the fixtures failed:\n${r.stderr}`);
}

const readers = {
  safetensors: { read: (f) => readSafetensors(f), parse: (b, f) => parseSafetensors(b, f) },
  'pth (zip)': { read: (f) => readPth(f), parse: (b, f) => parsePth(b, { file: f }) },
  'pth (legacy)': { read: (f) => readPth(f), parse: (b, f) => parsePth(b, { file: f }) },
};

const times = Object.fromEntries(Object.keys(files).map((k) => [k, { read: [], parse: [] }]));
let reference;
for (let round = 0; round < Number(values.rounds); round++) {
  const order = Object.keys(files);
  if (round % 2) order.reverse();
  for (const name of order) {
    globalThis.gc?.();
    let t0 = performance.now();
    const got = await readers[name].read(files[name]);
    times[name].read.push(performance.now() - t0);
    const bytes = readFileSync(files[name]);
    t0 = performance.now();
    readers[name].parse(bytes, files[name]);
    times[name].parse.push(performance.now() - t0);
    // Same tensors whatever the format (checked once per format).
    if (round === 0) {
      const sig = [...got.tensors].map(([k, t]) => `${k}:${t.dtype}:${t.shape}:${t.data.byteLength}`).join('|');
      reference ??= sig;
      if (sig !== reference) throw new Error(`${name} holds other tensors than safetensors`);
    }
  }
}

const best = (xs) => Math.min(...xs);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = times.safetensors;
const rows = Object.entries(times).map(([name, t]) => ({
  format: name,
  sizeMB: +(statSync(files[name]).size / 1e6).toFixed(1),
  readBestMs: +best(t.read).toFixed(1),
  readMedianMs: +median(t.read).toFixed(1),
  parseBestMs: +best(t.parse).toFixed(1),
  parseMedianMs: +median(t.parse).toFixed(1),
  readRatio: +(median(t.read) / median(base.read)).toFixed(2),
  parseRatio: +(median(t.parse) / median(base.parse)).toFixed(2),
}));

const header = ['format', 'size MB', 'read best', 'read median', 'parse best', 'parse median', 'read / safetensors', 'parse / safetensors'];
const table = [header, ...rows.map((r) => [r.format, r.sizeMB, `${r.readBestMs} ms`, `${r.readMedianMs} ms`, `${r.parseBestMs} ms`, `${r.parseMedianMs} ms`, `${r.readRatio}x`, `${r.parseRatio}x`])];
const widths = header.map((_, i) => Math.max(...table.map((row) => String(row[i]).length)));
for (const row of table) console.log(row.map((c, i) => String(c).padEnd(widths[i])).join('  '));

const out = join(root, 'bench', 'results', 'pth-read.json');
mkdirSync(dirname(out), { recursive: true });
const result = { variant: values.variant, rounds: Number(values.rounds), node: process.version, date: new Date().toISOString(), tensors: reference.split('|').length, rows };
writeFileSync(`${out}.tmp`, JSON.stringify(result, null, 2) + '\n');
const { renameSync } = await import('node:fs');
renameSync(`${out}.tmp`, out);
console.log(`\nwrote ${out}`);
