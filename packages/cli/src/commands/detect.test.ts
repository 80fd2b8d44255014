import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientDet, detectorConfig, randomWeights, writeSafetensors } from '@effnet/core';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { noisePng } from '../../../../testing/images.js';
import { main } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-detect-cli-'));

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  let err = '';
  const code = await main(args, (s) => out.push(s), { write: (s: string) => (err += s) });
  return { code, out, err };
}

const png = (name: string, width: number, height: number, seed: number) => noisePng(join(dir, name), width, height, seed);

describe('effnet detect', () => {
  let images = '';
  let a = '';
  let bad = '';
  beforeAll(async () => {
    images = join(dir, 'images');
    a = await png('images/a.png', 96, 64, 1);
    await png('images/sub/b.png', 50, 80, 2);
    bad = join(dir, 'bad.jpg');
    writeFileSync(bad, 'not a jpeg');
  });

  it('prints JSON lines in original pixels, notes random weights, and reports unreadable images (exit 1 unless --skip-errors)', async () => {
    const r = await run(['detect', images, bad, '--model', 'tf_efficientdet_lite0', '--score', '0', '--max', '5', '--json']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/note: tf_efficientdet_lite0 has random weights .*its boxes mean nothing/);
    expect(r.err).toMatch(/1 of 3 images could not be read \(exit code 1; --skip-errors makes it 0\)/);
    const lines = r.out.map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.file, l.width, l.height])).toEqual([
      [a, 96, 64],
      [join(images, 'sub', 'b.png'), 50, 80],
      [bad, undefined, undefined],
    ]);
    expect(lines[2].error).toMatch(/cannot decode image .*bad\.jpg/);
    for (const l of lines.slice(0, 2)) {
      expect(l.detections).toHaveLength(5);
      for (const d of l.detections) {
        expect(Object.keys(d)).toEqual(['label', 'classId', 'score', 'box']);
        expect(d.label).toBe(`class ${d.classId}`);
        expect(d.box[0]).toBeGreaterThanOrEqual(0);
        expect(d.box[2]).toBeLessThanOrEqual(l.width);
        expect(d.box[3]).toBeLessThanOrEqual(l.height);
      }
      const scores = l.detections.map((d: { score: number }) => d.score);
      expect(scores).toEqual([...scores].sort((x, y) => y - x));
    }
    expect((await run(['detect', a, bad, '--model', 'tf_efficientdet_lite0', '--skip-errors'])).code).toBe(0);
  });

  it('prints a table, (none) for an image without detections over the score', async () => {
    const r = await run(['detect', a, '--model', 'tf_efficientdet_lite0', '--score', '0', '--max', '2']);
    expect(r.out.join('\n')).toMatch(/^image +label +score +box x1, y1, x2, y2\n[- ]+\n.*a\.png +class \d+ +0\.\d\d +[\d.]+, [\d.]+, [\d.]+, [\d.]+\n +class \d+/);
    expect((await run(['detect', a, '--model', 'tf_efficientdet_lite0', '--score', '0.999'])).out.join('\n')).toMatch(/a\.png +\(none\)/);
    const soft = JSON.parse((await run(['detect', a, '--model', 'tf_efficientdet_lite0', '--soft-nms', '--score', '0', '--max', '4', '--json'])).out[0]!);
    expect(soft.detections).toHaveLength(4);
  });

  it('--draw DIR writes each image with its boxes at its own size, and claims DIR (--force to write over it)', async () => {
    const out = join(dir, 'drawn');
    const args = ['detect', images, '--model', 'tf_efficientdet_lite0', '--score', '0', '--max', '3', '--draw', out];
    const r = await run(args);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/drew 2 images in .*drawn/);
    expect(readdirSync(out).sort()).toEqual(['a.png', 'b.png']);
    expect(await sharp(join(out, 'a.png')).metadata()).toMatchObject({ width: 96, height: 64, format: 'png' });
    await expect(run(args)).rejects.toThrow(/--draw .*drawn already holds a\.png, b\.png; effnet does not write over it unless told to/);
    expect((await run([...args, '--force'])).code).toBe(0);
  });

  it("with a detector's 90-class weight file: COCO's names; named usage mistakes", async () => {
    const graph = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { inputResolution: 64 });
    const file = join(dir, 'tf_efficientdet_lite0-mine.safetensors');
    await writeSafetensors(file, randomWeights(graph, 3));
    const r = await run(['detect', a, '--model', file, '--score', '0', '--max', '3', '--json']);
    expect(r.err).toMatch(/note: class names: COCO's 90 category ids/);
    const labels = JSON.parse(r.out[0]!).detections.map((d: { label: string; classId: number }) => [d.classId, d.label]);
    for (const [id, label] of labels) expect(label).not.toBe(`class ${id}`);
    await expect(run(['detect', a, '--model', 'efficientnet_b0'])).rejects.toThrow(/a detector: .*this is a classifier/);
    await expect(run(['detect', a, '--model', 'tf_efficientdet_lite0', '--score', '1.5'])).rejects.toThrow(/--score/);
    await expect(run(['detect', join(dir, 'none'), '--model', 'tf_efficientdet_lite0'])).rejects.toThrow(/no such file or directory/);
  });

  it('zoo list shows the detection entries with their COCO mAP', async () => {
    const rows = JSON.parse((await run(['zoo', 'list', '--json'])).out.join('\n'));
    expect(rows.find((r: { name: string }) => r.name === 'tf_efficientdet_d0.coco')).toMatchObject({ task: 'detection', arch: 'tf_efficientdet_d0', family: 'effdet', format: 'pth', cocoMap: 34.2, top1: null, labels: 'coco-90' });
    expect((await run(['zoo', 'list'])).out.join('\n')).toMatch(/tf_efficientdet_d6\.coco +tf_efficientdet_d6 +effdet +52\.0 mAP/);
  });
});
