import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateShapeDataset } from '@effnet/tasks';
import { describe, expect, it } from 'vitest';
import { main } from '../cli.js';

async function run(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  expect(await main(args, (s) => lines.push(s), { write: () => true })).toBe(0);
  return lines;
}

describe('effnet classify', () => {
  it('takes an exported .onnx as the model, and gives the same labels on the fast and the exact resize paths', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-classify-'));
    await generateShapeDataset(join(dir, 'shapes'), { perClass: 3, size: 64, seed: 5 });
    const onnx = join(dir, 'shapes.onnx');
    await run(['export', 'effnet-shapes', '-o', onnx]);
    const labels = async (...extra: string[]) => (await run(['classify', join(dir, 'shapes'), '--model', onnx, '--json', '--topk', '1', '--batch', '4', ...extra])).map((l) => JSON.parse(l) as { image: string; top: { label: string }[] });
    const fast = await labels();
    const exact = await labels('--resize', 'exact');
    expect(fast).toHaveLength(18);
    expect(fast.map((r) => r.top[0]!.label)).toEqual(exact.map((r) => r.top[0]!.label));
    const right = fast.filter((r) => r.image.split('/').at(-2) === r.top[0]!.label).length;
    expect(right).toBeGreaterThanOrEqual(15);
  });
});
