import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../cli.js';

describe('effnet bench', () => {
  it('prints the result as JSON and writes it with --out, refusing to overwrite without --force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-bench-cli-'));
    const out = join(dir, 'r.json');
    const lines: string[] = [];
    const progress: string[] = [];
    const args = ['bench', '--model', 'efficientnet_phi-4', '--resolution', '32', '--batch', '2', '--warmup', '1', '--iterations', '2', '--json', '--out', out];
    expect(await main(args, (s) => lines.push(s), { write: (s: string) => progress.push(s) })).toBe(0);
    const r = JSON.parse(lines.join('\n'));
    expect(r).toMatchObject({ model: 'efficientnet_phi-4', task: 'infer', device: 'cpu', batch: 2, resolution: [32, 32] });
    for (const k of ['medianMs', 'p90Ms', 'imagesPerSecond', 'peakRssMB', 'machine']) expect(r).toHaveProperty(k);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(r);
    expect(progress.join('')).toMatch(/loaded in .*; 3 runs/);
    writeFileSync(out, 'mine');
    await expect(main(args, () => {})).rejects.toThrow(/--out/);
    expect(readFileSync(out, 'utf8')).toBe('mine');
  });
});
