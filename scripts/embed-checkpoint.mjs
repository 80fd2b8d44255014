#!/usr/bin/env node
// Ships a training run's checkpoint as an embedded model of @effnet/zoo: copies <run>/<which>.safetensors and its
// card to packages/zoo/assets/<name>.{safetensors,json} (the card renamed, its weights pointing at the copy) and
// prints the sha256 and size to pin in packages/zoo/src/registry/embedded.ts.
//   node scripts/embed-checkpoint.mjs RUN_DIR NAME [best|model]
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [run, name, which = 'best'] = process.argv.slice(2);
if (!run || !name || !/^[a-z0-9-]+$/.test(name)) {
  console.error('usage: node scripts/embed-checkpoint.mjs RUN_DIR NAME [best|model]');
  process.exit(2);
}
const assets = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'zoo', 'assets');
const card = JSON.parse(readFileSync(join(run, `${which}.json`), 'utf8'));
card.name = name;
card.weights = `${name}.safetensors`;
copyFileSync(join(run, `${which}.safetensors`), join(assets, card.weights));
writeFileSync(join(assets, `${name}.json`), `${JSON.stringify(card, null, 2)}\n`);
const bytes = readFileSync(join(assets, card.weights));
console.log(JSON.stringify({ name, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, epoch: card.epoch, metrics: card.metrics }));
