import sharp from 'sharp';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy, readSafetensors, type Tensor } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { contiguous, zipPth } from '../../core/test/pth-writer.js';
import { describeWithPeers, maxDiff, pthFixture, torchvisionFixture } from '../../../testing/peers.js';
import { main } from './cli.js';

async function cli(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s));
  return lines.join('\n');
}

const bytesOf = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('effnet convert', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-convert-'));
  const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
  const input = join(dir, 'last.pth');
  writeFileSync(
    input,
    zipPth({
      epoch: 4,
      state_dict: new Map([
        ['module.fc.weight', contiguous('0', 'float32', [1, 2], f32(1, 2))],
        ['module.fc.bias', contiguous('1', 'float32', [1], f32(3))],
      ]),
      state_dict_ema: new Map([['module.fc.weight', contiguous('2', 'float32', [1, 2], f32(5, 6))]]),
    }),
  );

  it('writes the weights as safetensors, says which entry it took, and refuses to overwrite without --force', async () => {
    const out = join(dir, 'w.safetensors');
    expect(await cli(['convert', input, '-o', out, '--weights-key', 'state_dict'])).toBe(
      `read ${input}: PyTorch checkpoint (zip), entry "state_dict", prefix "module." removed, 2 tensors\nwrote ${out}: 2 tensors, 0.0 MB`,
    );
    const st = await readSafetensors(out);
    expect([...st.tensors.keys()]).toEqual(['fc.weight', 'fc.bias']);
    expect(Array.from(st.tensors.get('fc.weight')!.data as Float32Array)).toEqual([1, 2]);
    expect(st.metadata).toEqual({ format: 'pt', 'effnet.source': 'last.pth', 'effnet.weights_key': 'state_dict' });
    await expect(cli(['convert', input, '-o', out])).rejects.toThrow(/w\.safetensors is a file that already exists; effnet does not replace it unless told to: pass --force/);
    expect(await cli(['convert', input, '-o', out, '--force'])).toMatch(/entry "state_dict_ema"/);
    expect(Array.from((await readSafetensors(out)).tensors.get('fc.weight')!.data as Float32Array)).toEqual([5, 6]);
  });

  it('names the entries that hold weights when --weights-key names none, and needs -o', async () => {
    await expect(cli(['convert', input, '-o', join(dir, 'x.safetensors'), '--weights-key', 'model'])).rejects.toThrow(
      /last\.pth: weights key "model" is not in the checkpoint; entries holding weights: "state_dict", "state_dict_ema"/,
    );
    await expect(cli(['convert', input])).rejects.toThrow(/effnet convert needs -o\/--output FILE/);
  });
});

/** torchvision's logits from state_dicts torch.save wrote, through `effnet run`, `export` and `convert`. */
describeWithPeers(['torch', 'torchvision'], '.pth weights through the CLI (against torchvision)', () => {
  const fx = torchvisionFixture('efficientnet_b0', { resolution: 128 });
  const pth = pthFixture(fx);
  const dir = mkdtempSync(join(tmpdir(), 'effnet-cli-pth-'));

  it.each([
    ['weights.zip.pth', 'PyTorch checkpoint (zip), 360 tensors'],
    ['weights.legacy.pth', 'PyTorch checkpoint (legacy), 360 tensors'],
    ['weights.nested.pth', 'PyTorch checkpoint (legacy), entry "state_dict", 360 tensors'],
    ['weights.module.zip.pth', 'PyTorch checkpoint (zip), prefix "module." removed, 360 tensors'],
  ])('effnet run --weights %s gives torchvision logits', async (file, description) => {
    const output = join(dir, `${file}.npy`);
    const text = await cli(['run', '--model', 'efficientnet_b0', '--weights', join(pth, file), '--weights-format', 'torchvision', '--input', fx.input, '--output', output]);
    expect(text).toContain(`read ${join(pth, file)}: ${description}`);
    const { diff, scale } = maxDiff((await readNpy(output)).data as Float32Array, (await readNpy(fx.logits)).data as Float32Array);
    expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  });

  it('effnet classify --weights x.pth: the top class of torchvision\'s logits for an image, ImageNet names for 1000 classes', async () => {
    const png = join(dir, 'grey.png');
    await sharp({ create: { width: 160, height: 140, channels: 3, background: { r: 120, g: 90, b: 60 } } }).png().toFile(png);
    const text = await cli(['classify', png, '--model', 'efficientnet_b0', '--weights', join(pth, 'weights.zip.pth'), '--weights-format', 'torchvision', '--json', '--topk', '1']);
    const line = JSON.parse(text.trim().split('\n').find((l) => l.startsWith('{'))!) as { top: { label: string; index: number }[] };
    expect(line.top[0]!.index).toBeGreaterThanOrEqual(0);
    expect(line.top[0]!.label).not.toMatch(/^class /);
    await expect(cli(['classify', png, '--model', 'effnet-shapes', '--weights', join(pth, 'weights.zip.pth')])).rejects.toThrow(/--weights|weights.*a weight file goes with an architecture/);
  });

  it('effnet export takes a .pth with --weights-key; a key that holds no weights is named', async () => {
    const text = await cli(['export', 'efficientnet_b0', '--weights', join(pth, 'weights.nested.pth'), '--weights-key', 'state_dict', '--weights-format', 'torchvision', '-o', join(dir, 'b0.onnx'), '--resolution', '128']);
    expect(text).toMatch(/entry "state_dict"[\s\S]*wrote .*b0\.onnx/);
    await expect(
      cli(['run', '--model', 'efficientnet_b0', '--weights', join(pth, 'weights.nested.pth'), '--weights-key', 'optimizer', '--input', fx.input, '--output', join(dir, 'z.npy')]),
    ).rejects.toThrow(/weights key "optimizer" holds a dict, not a dict of tensors; entries holding weights: "state_dict"/);
    await expect(cli(['run', '--model', 'efficientnet_b0', '--weights-key', 'state_dict', '--input', fx.input, '--output', join(dir, 'z.npy')])).rejects.toThrow(
      /--weights-key: "state_dict" \(given only with --weights/,
    );
  });

  it('effnet convert of a training checkpoint writes the very tensors torchvision saved', async () => {
    const out = join(dir, 'nested.safetensors');
    await cli(['convert', join(pth, 'weights.nested.pth'), '-o', out]);
    const got = (await readSafetensors(out)).tensors;
    const want = (await readSafetensors(fx.weights)).tensors;
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [name, t] of want) {
      expect(got.get(name)!.shape).toEqual(t.shape);
      expect(bytesOf(got.get(name)!).equals(bytesOf(t)), name).toBe(true);
    }
    expect(readFileSync(out).length).toBeGreaterThan(20e6);
  });
});
