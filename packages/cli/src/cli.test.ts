import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { float32Tensor, readNpy, writeNpy } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { describeWithPeers, maxDiff, torchvisionFixture } from '../../../testing/peers.js';
import { main } from './cli.js';

async function run(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s));
  return lines.join('\n');
}

describe('effnet info', () => {
  it('prints params 12233232 for efficientnet_b3 --json', async () => {
    const info = JSON.parse(await run(['info', 'efficientnet_b3', '--json']));
    expect(info).toMatchObject({ variant: 'efficientnet_b3', resolution: 300, params: 12_233_232 });
    for (const k of ['variant', 'resolution', 'params', 'macs', 'stages', 'endpoints']) expect(info).toHaveProperty(k);
    expect(info.stages[0]).toMatchObject({ block: 'ir_r2_k3_s1_e1_c24_se0.25', repeats: 2, inChannels: 40, outChannels: 24 });
    expect(info.endpoints.map((e: { stride: number }) => e.stride)).toEqual([2, 4, 8, 16, 32]);
  });
  it('scales by --phi and honours --resolution', async () => {
    const info = JSON.parse(await run(['info', '--phi=-1', '--resolution', '128', '--json']));
    expect(info.resolution).toBe(128);
    expect(info.scaling.phi).toBe(-1);
    expect(info.params).toBeLessThan(5_288_548);
  });
  it('prints a readable table', async () => {
    const text = await run(['info', 'efficientnetv2_s']);
    expect(text).toMatch(/efficientnetv2_s at 384x384: 21,458,488 params/);
    expect(text).toMatch(/stride32 +blocks\.5\.14/);
  });
  it('unknown variants are a clear error', async () => {
    await expect(run(['info', 'efficientnet_b9'])).rejects.toThrow(/known: efficientnet_b0/);
  });
});

describe('effnet variants', () => {
  it('lists every variant with resolution, params and MACs', async () => {
    const rows = JSON.parse(await run(['variants', '--json']));
    expect(rows.find((r: { variant: string }) => r.variant === 'efficientnet_b0')).toMatchObject({ resolution: 224, params: 5_288_548, macs: 385_814_752 });
    expect(rows.map((r: { variant: string }) => r.variant)).toContain('tf_efficientnetv2_b3');
    expect(await run(['variants'])).toMatch(/efficientnet_lite0 +efficientnet_lite/);
  });
});

describe('the effnet binary', () => {
  const bin = fileURLToPath(new URL('../bin/effnet.js', import.meta.url));
  it('runs from the built package and exits non-zero with one line on bad input', () => {
    expect(JSON.parse(execFileSync(process.execPath, [bin, 'info', 'efficientnet_b3', '--json'], { encoding: 'utf8' })).params).toBe(12_233_232);
    let stderr = '';
    try {
      execFileSync(process.execPath, [bin, 'info', 'nope'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      stderr = (e as { stderr: string }).stderr;
    }
    expect(stderr).toMatch(/^effnet: "nope" is not a known variant/);
  });
  it('loads both backends from their built packages in plain Node (ESM), not only under vitest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-bin-'));
    const x = join(dir, 'x.npy');
    await writeNpy(x, float32Tensor([1, 3, 64, 64]));
    for (const backend of ['onnx', 'tfjs']) {
      const out = execFileSync(process.execPath, [bin, 'run', '--model', 'efficientnet_b0', '--input', x, '--output', join(dir, `${backend}.npy`), '--backend', backend, '--device', backend === 'tfjs' ? 'wasm' : 'cpu'], { encoding: 'utf8' });
      expect(out).toMatch(new RegExp(`logits \\[1, 1000\\] on ${backend}`));
    }
  });
});

describeWithPeers(['torch', 'torchvision'], 'effnet run and export (against torchvision)', () => {
  const fx = torchvisionFixture('efficientnet_b0', { resolution: 128 });
  const dir = mkdtempSync(join(tmpdir(), 'effnet-cli-'));

  it('effnet run writes torchvision-equal logits', async () => {
    const output = join(dir, 'y.npy');
    const text = await run(['run', '--model', 'efficientnet_b0', '--weights', fx.weights, '--weights-format', 'torchvision', '--input', fx.input, '--output', output]);
    expect(text).toMatch(/wrote .*y\.npy: logits \[2, 1000\] on onnx \(cpu/);
    const got = await readNpy(output);
    const want = await readNpy(fx.logits);
    const { diff, scale } = maxDiff(got.data as Float32Array, want.data as Float32Array);
    expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  });

  it('effnet run --backend tfjs gives the same logits on wasm and says what it picked', async () => {
    const output = join(dir, 'tf.npy');
    const text = await run(['run', '--model', 'efficientnet_b0', '--weights', fx.weights, '--weights-format', 'torchvision', '--input', fx.input, '--output', output, '--backend', 'tfjs', '--device', 'wasm']);
    expect(text).toMatch(/on tfjs \(wasm; picked wasm \(@tensorflow\/tfjs-backend-wasm\)\)/);
    const { diff, scale } = maxDiff((await readNpy(output)).data as Float32Array, (await readNpy(fx.logits)).data as Float32Array);
    expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  });

  it('effnet export writes a model that onnxruntime runs to the same logits', async () => {
    const file = join(dir, 'b0.onnx');
    const text = await run(['export', 'efficientnet_b0', '--weights', fx.weights, '--weights-format', 'torchvision', '-o', file, '--resolution', '128']);
    expect(text).toMatch(/wrote .*b0\.onnx \(21\.\d MB\), opset 17/);
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(readFileSync(file));
    const x = await readNpy(fx.input);
    const out = await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
    const want = await readNpy(fx.logits);
    expect(maxDiff(out.logits!.data as Float32Array, want.data as Float32Array).diff).toBeLessThanOrEqual(1e-4 * maxDiff(want.data as Float32Array, want.data as Float32Array).scale);
  });

  it('says when it exports a random initialisation, and names a wrong weight format', async () => {
    expect(await run(['export', 'efficientnet_b0', '-o', join(dir, 'r.onnx'), '--dynamic', '--fp16'])).toMatch(/random initialisation[\s\S]*fp16/);
    await expect(run(['run', '--model', 'efficientnet_b0', '--weights', fx.weights, '--input', fx.input, '--output', join(dir, 'z.npy')])).rejects.toThrow(
      /look like torchvision names/,
    );
    await expect(run(['run', '--model', 'efficientnet_b0', '--weights', fx.weights, '--weights-format', 'keras2', '--input', fx.input, '--output', join(dir, 'z.npy')])).rejects.toThrow(
      /--weights-format: "keras2" \(one of effnet, timm, torchvision, keras, effdet, smp\)/,
    );
  });
});
