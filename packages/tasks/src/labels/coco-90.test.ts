import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { describeWithPeers, PYTHON } from '../../../../testing/peers.js';
import { COCO_90_LABELS } from './coco-90.js';
import { labelsFor } from './label-sets.js';

const UNUSED = [12, 26, 29, 30, 45, 66, 68, 69, 71, 83];

describe('the coco-90 label set', () => {
  it("puts COCO's category names at their ids (class id k is labels[k - 1]), the 10 unassigned ids named as such", () => {
    expect(labelsFor('coco-90')).toBe(COCO_90_LABELS);
    expect(COCO_90_LABELS).toHaveLength(90);
    expect(Object.isFrozen(COCO_90_LABELS)).toBe(true);
    expect([1, 3, 13, 18, 44, 62, 72, 90].map((id) => COCO_90_LABELS[id - 1])).toEqual(['person', 'car', 'stop sign', 'dog', 'bottle', 'chair', 'tv', 'toothbrush']);
    for (const id of UNUSED) expect(COCO_90_LABELS[id - 1]).toBe(`unused id ${id}`);
    const real = COCO_90_LABELS.filter((l) => !l.startsWith('unused'));
    expect(new Set(real).size).toBe(80);
  });
});

describeWithPeers(['torchvision'], 'the coco-90 label set against torchvision', () => {
  it("is torchvision's _COCO_CATEGORIES without the background, N/A renamed", () => {
    const r = spawnSync(PYTHON, ['-c', 'import json; from torchvision.models._meta import _COCO_CATEGORIES as c; print(json.dumps(c))'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const tv = JSON.parse(r.stdout) as string[];
    expect(tv[0]).toBe('__background__');
    expect(COCO_90_LABELS).toEqual(tv.slice(1).map((n, i) => (n === 'N/A' ? `unused id ${i + 1}` : n)));
  });
});
