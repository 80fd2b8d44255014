import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RegistryEntry } from './schema.js';

/** This package's root (where package.json names @effnet/zoo), from src/ under vitest or dist/ when built. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === '@effnet/zoo') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('@effnet/zoo: cannot find the package root for its embedded models');
    dir = up;
  }
}

/** Models that ship inside the package, so that the demo and the tests run offline. Each one's model card (beside
 * its weights) is the single source of its architecture, classes and preprocessing; the checksum is pinned here. */
export function embeddedEntries(): RegistryEntry[] {
  const assets = join(packageRoot(), 'assets');
  const cardFile = join(assets, 'effnet-shapes.json');
  if (!existsSync(cardFile)) return [];
  const card = JSON.parse(readFileSync(cardFile, 'utf8')) as { arch: string; classes: string[]; preprocessing: RegistryEntry['preprocessing']; weights: string };
  return [
    ...segmenterEntries(assets),
    {
      name: 'effnet-shapes',
      arch: card.arch,
      family: 'effnet',
      format: 'safetensors',
      naming: 'effnet',
      url: join(assets, card.weights),
      sha256: EFFNET_SHAPES_SHA256,
      size: EFFNET_SHAPES_SIZE,
      preprocessing: card.preprocessing,
      labels: 'effnet-shapes',
      numClasses: card.classes.length,
      license: 'apache-2.0',
      reference: 'trained in this repository with effnet train on generated shapes; recipe in README.md, model card assets/effnet-shapes.json',
      notes: `embedded: ships with @effnet/zoo and needs no network. Classes: ${card.classes.join(', ')}.`,
      origin: 'builtin',
    },
  ];
}

/** effnet-shapes-seg: the embedded segmenter (generated scenes of the six shapes), when its assets are present. */
function segmenterEntries(assets: string): RegistryEntry[] {
  const cardFile = join(assets, 'effnet-shapes-seg.json');
  if (!existsSync(cardFile)) return [];
  const card = JSON.parse(readFileSync(cardFile, 'utf8')) as { arch: string; classes: string[]; preprocessing: RegistryEntry['preprocessing']; weights: string; metrics?: { mIoU?: number } };
  return [
    {
      name: 'effnet-shapes-seg',
      arch: card.arch,
      task: 'segmentation',
      family: 'effnet',
      format: 'safetensors',
      naming: 'effnet',
      url: join(assets, card.weights),
      sha256: EFFNET_SHAPES_SEG_SHA256,
      size: EFFNET_SHAPES_SEG_SIZE,
      preprocessing: card.preprocessing,
      labels: 'effnet-shapes-seg',
      numClasses: card.classes.length,
      license: 'apache-2.0',
      reference: 'trained in this repository with effnet train --task segmentation on generated scenes (scripts/train-shapes-seg.sh); model card assets/effnet-shapes-seg.json',
      notes: `embedded: ships with @effnet/zoo and needs no network; the start for fine-tuning segmenters. Classes: ${card.classes.join(', ')}.`,
      origin: 'builtin',
    },
  ];
}

const EFFNET_SHAPES_SEG_SHA256 = 'c28ed0edee4a90dba1e43d5b3f33a1b7b22bbac9f601a6480f56d34eb1f57a7d';
const EFFNET_SHAPES_SEG_SIZE = 7913796;

const EFFNET_SHAPES_SHA256 = '38e59eed12b3ebc93cdb86c9a00c694ae62d73af8d1e0b10617ec753a576d712';
const EFFNET_SHAPES_SIZE = 4842472;
