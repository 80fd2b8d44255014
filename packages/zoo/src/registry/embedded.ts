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

/** One model that ships in assets/: its card (beside its weights) is the single source of its architecture, classes
 * and preprocessing; the checksum and size are pinned here. */
interface EmbeddedModel {
  name: string;
  task: 'classification' | 'detection' | 'segmentation';
  sha256: string;
  size: number;
  /** Its label set (class names in class-index order; a detector's class id k is name k-1). */
  labels: string;
  reference: string;
}

const EMBEDDED: readonly EmbeddedModel[] = [
  {
    name: 'effnet-shapes',
    task: 'classification',
    sha256: '38e59eed12b3ebc93cdb86c9a00c694ae62d73af8d1e0b10617ec753a576d712',
    size: 4842472,
    labels: 'effnet-shapes',
    reference: 'trained in this repository with effnet train on generated shapes; recipe in README.md, model card assets/effnet-shapes.json',
  },
  {
    name: 'effnet-shapes-det',
    task: 'detection',
    sha256: '6f6c1332b5aa9df5c591fb25c6412c3aefa4e83c187c03675a090ee8678ba379',
    size: 4210396,
    labels: 'effnet-shapes',
    reference: 'trained in this repository with effnet train --task detection on generated scenes (backbone from effnet-shapes); recipe in README.md, model card assets/effnet-shapes-det.json',
  },
  {
    name: 'effnet-shapes-seg',
    task: 'segmentation',
    sha256: '3d96dd2b4b69f381af885c9c6da722f9bd3a15302a696a1a9127f838b82c222f',
    size: 12507356,
    labels: 'effnet-shapes-seg',
    reference: 'trained in this repository with effnet train --task segmentation on generated scenes (scripts/train-shapes-seg.sh); model card assets/effnet-shapes-seg.json',
  },
];

/** Models that ship inside the package, so that the demo and the tests run offline (those whose card is present). */
export function embeddedEntries(): RegistryEntry[] {
  const assets = join(packageRoot(), 'assets');
  const entries: RegistryEntry[] = [];
  for (const m of EMBEDDED) {
    const cardFile = join(assets, `${m.name}.json`);
    if (!existsSync(cardFile)) continue;
    const card = JSON.parse(readFileSync(cardFile, 'utf8')) as { arch: string; classes: string[]; preprocessing: RegistryEntry['preprocessing']; weights: string };
    entries.push({
      name: m.name,
      arch: card.arch,
      ...(m.task === 'classification' ? {} : { task: m.task }),
      family: m.task === 'detection' ? 'effdet' : 'effnet',
      format: 'safetensors',
      naming: m.task === 'detection' ? 'effdet' : 'effnet',
      url: join(assets, card.weights),
      sha256: m.sha256,
      size: m.size,
      preprocessing: card.preprocessing,
      labels: m.labels,
      numClasses: card.classes.length,
      license: 'apache-2.0',
      reference: m.reference,
      notes: `embedded: ships with @effnet/zoo and needs no network${m.task === 'classification' ? '' : `; the start for fine-tuning ${m.task === 'detection' ? 'detectors' : 'segmenters'}`}. Classes: ${card.classes.join(', ')}.`,
      origin: 'builtin',
    });
  }
  return entries;
}
