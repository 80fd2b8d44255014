import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientDet, detectorConfig, float32Tensor, randomWeights, readNpy, writeNpy, writeSafetensors } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { describeWithPeers, effdetFixture, maxDiff } from '../../../../testing/peers.js';
import { main } from '../cli.js';

async function run(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s));
  return lines.join('\n');
}

describe('effnet info <detector>', () => {
  it('reports effdet\'s exact parameter count, the raw outputs and the config', async () => {
    const info = JSON.parse(await run(['info', 'tf_efficientdet_d0', '--json']));
    expect(info).toMatchObject({ variant: 'tf_efficientdet_d0', task: 'detection', imageSize: [512, 512], params: 3_880_067, numClasses: 90, backbone: 'tf_efficientnet_b0' });
    expect(info.fpn).toEqual({ channels: 64, cells: 3, fusion: 'fast', act: 'silu' });
    expect(info.outputs.class_P3).toEqual([1, 810, 64, 64]);
    expect(info.endpoints.map((e: { name: string }) => e.name)).toContain('P7');
    expect(JSON.parse(await run(['info', 'efficientdet_d1', '--json'])).params).toBe(6_622_026);
  });

  it('--num-classes changes the class net; --resolution the sizes', async () => {
    const info = JSON.parse(await run(['info', 'tf_efficientdet_lite0', '--num-classes', '3', '--resolution', '256', '--json']));
    expect(info.params).toBe(3_243_470 - (90 - 3) * 9 * (64 + 1));
    expect(info.outputs.class_P7).toEqual([1, 27, 2, 2]);
    expect(await run(['info', 'tf_efficientdet_d7x'])).toMatch(/tf_efficientdet_d7x at 1536x1536: 77,147,166 params[\s\S]*levels P3-P8/);
  });

  it('names what does not fit', async () => {
    await expect(run(['info', 'efficientnet_b0', '--num-classes', '3'])).rejects.toThrow(/--num-classes: 3 \(a detector or segmenter name/);
    await expect(run(['info', 'tf_efficientdet_d0', '--phi', '1'])).rejects.toThrow(/efficientdet_phi1/);
  });
});

describe('effnet run with a many-output graph', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-det-run-'));
  const input = join(dir, 'x.npy');

  it('writes DIR/<output>.npy per output, refuses a DIR with files in it unless --force, and a .npy path', async () => {
    await writeNpy(input, float32Tensor([1, 3, 96, 128]));
    const out = join(dir, 'heads');
    const args = ['run', '--model', 'tf_efficientdet_lite0', '--input', input, '--output', out];
    const text = await run(args);
    expect(text).toMatch(/wrote 10 outputs to .*heads\/ on onnx/);
    expect(readdirSync(out).sort()).toEqual(['box_P3', 'box_P4', 'box_P5', 'box_P6', 'box_P7', 'class_P3', 'class_P4', 'class_P5', 'class_P6', 'class_P7'].map((n) => `${n}.npy`));
    expect((await readNpy(join(out, 'class_P3.npy'))).shape).toEqual([1, 810, 12, 16]);
    expect((await readNpy(join(out, 'box_P7.npy'))).shape).toEqual([1, 36, 1, 1]);
    await expect(run(args)).rejects.toThrow(/heads already holds .*effnet does not write over it unless told to: pass --force/);
    expect(await run([...args, '--force'])).toMatch(/wrote 10 outputs/);
    await expect(run(['run', '--model', 'tf_efficientdet_lite0', '--input', input, '--output', join(dir, 'y.npy')])).rejects.toThrow(/has 10 outputs/);
    expect(await run(['export', 'tf_efficientdet_lite0', '-o', join(dir, 'det.onnx'), '--resolution', '128'])).toMatch(/output "class_P3", .*"box_P7"[\s\S]*3,243,470 params/);
    writeFileSync(join(dir, 'file'), '');
    await expect(run(['run', '--model', 'tf_efficientdet_lite0', '--input', input, '--output', join(dir, 'file')])).rejects.toThrow(/file is a file, not a directory/);
  });
});

describe('effnet run with detector weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-det-weights-'));

  it('takes the class count from the weights, and names the detector that other weights belong to', async () => {
    const input = join(dir, 'x.npy');
    await writeNpy(input, float32Tensor([1, 3, 64, 64]));
    const lite = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { numClasses: 3 });
    const file = join(dir, 'lite0_3.safetensors');
    await writeSafetensors(file, randomWeights(lite));
    await run(['run', '--model', 'tf_efficientdet_lite0', '--weights', file, '--weights-format', 'effdet', '--input', input, '--output', join(dir, 'a')]);
    expect((await readNpy(join(dir, 'a', 'class_P3.npy'))).shape).toEqual([1, 27, 8, 8]);
    await expect(run(['run', '--model', 'tf_efficientdet_d0', '--weights', file, '--input', input, '--output', join(dir, 'b')])).rejects.toThrow(
      /hint: .*lite0_3\.safetensors holds the weights of tf_efficientdet_lite0, not tf_efficientdet_d0/,
    );
    await expect(run(['run', '--model', 'tf_efficientdet_d0', '--weights', file, '--weights-format', 'torchvision', '--input', input, '--output', join(dir, 'c')])).rejects.toThrow(
      /--weights-format: "torchvision" \(effnet or effdet for a detector/,
    );
  });
});

describeWithPeers(['torch', 'effdet'], 'effnet run --weights-format effdet (against effdet)', () => {
  it('gives effdet\'s raw outputs from effdet\'s state_dict', async () => {
    const fx = effdetFixture('tf_efficientdet_lite0');
    const out = join(mkdtempSync(join(tmpdir(), 'effnet-det-peer-')), 'heads');
    await run(['run', '--model', 'tf_efficientdet_lite0', '--weights', fx.weights, '--weights-format', 'effdet', '--input', fx.input, '--output', out]);
    for (const [name, file] of Object.entries(fx.outputs)) {
      const { diff, scale } = maxDiff((await readNpy(join(out, `${name}.npy`))).data as Float32Array, (await readNpy(file)).data as Float32Array);
      expect(diff, name).toBeLessThanOrEqual(1e-4 * scale);
    }
  });
});
