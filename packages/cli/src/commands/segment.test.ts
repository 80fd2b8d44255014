import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeIndexPng, generateShapeSceneDataset, SCENE_CLASSES } from '@effnet/tasks';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-segment-cli-'));

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  let err = '';
  const code = await main(args, (s) => out.push(s), { write: (s: string) => (err += s) });
  return { code, out, err };
}

describe('effnet train/eval/segment --task segmentation', () => {
  const data = join(dir, 'scenes');
  const ckpt = join(dir, 'run');
  beforeAll(async () => {
    await generateShapeSceneDataset(data, { count: 6, size: 32, seed: 2, supersample: 1 });
  });

  it('trains a segmenter, evaluates it (JSON) and writes masks at the images\' size and overlays', async () => {
    const t = await run(['train', '--task', 'segmentation', '--data', data, '--model', 'deeplabv3plus_efficientnet_phi-4', '--epochs', '1', '--batch', '3', '--size', '32', '--loss', 'dice', '--out', ckpt]);
    expect(t.code).toBe(0);
    expect(t.out.join('\n')).toMatch(/validation mIoU \d\.\d{3}, pixel accuracy/);
    expect(t.err).toMatch(/epoch 1\/1: loss .* mIoU/);

    const e = await run(['eval', '--task', 'segmentation', '--data', data, '--weights', ckpt, '--json']);
    expect(e.code).toBe(0);
    const ev = JSON.parse(e.out.join('\n'));
    expect(ev).toMatchObject({ images: 6, pixels: 6 * 32 * 32, classes: [...SCENE_CLASSES] });
    expect(ev.perClass).toHaveLength(SCENE_CLASSES.length);

    const s = await run(['segment', join(data, 'images'), '--model', ckpt, '--overlay', join(dir, 'over'), '--masks', join(dir, 'masks'), '--json']);
    expect(s.code).toBe(0);
    const lines = s.out.map((l) => JSON.parse(l));
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatchObject({ width: 32, height: 32 });
    expect(readdirSync(join(dir, 'over')).sort()).toEqual(['0.png', '1.png', '2.png', '3.png', '4.png', '5.png']);
    const m = decodeIndexPng(readFileSync(join(dir, 'masks', '0.png')));
    expect([m.width, m.height]).toEqual([32, 32]);
    // Nothing is written over without --force.
    await expect(run(['segment', join(data, 'images'), '--model', ckpt, '--overlay', join(dir, 'over')])).rejects.toThrow(/--overlay .*over already holds 0.png.*pass --force/);
  }, 120_000);

  it('refuses a detector and a classifier for segment, and tells segmentation options apart', async () => {
    await expect(run(['segment', join(data, 'images', '0.png'), '--model', 'tf_efficientdet_lite0'])).rejects.toThrow(/a segmenter: .*this is a detector/);
    await expect(run(['segment', join(data, 'images', '0.png'), '--model', 'effnet-shapes'])).rejects.toThrow(/a segmenter: .*classification zoo entry/);
    await expect(run(['train', '--data', data, '--model', 'effnet-shapes', '--epochs', '1', '--loss', 'dice'])).rejects.toThrow(/--loss is for segmentation/);
  });
});
