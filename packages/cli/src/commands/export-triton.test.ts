import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHAPE_CLASSES } from '@effnet/tasks';
import { tritonModelConfig } from '@effnet/serve';
import { describe, expect, it } from 'vitest';
import { main } from '../cli.js';

async function run(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s));
  return lines.join('\n');
}

describe('effnet export --triton', () => {
  it('writes a Triton model repository named by NAME=M, with the class labels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-triton-cli-'));
    const out = await run(['export', 'shapes=effnet-shapes', '--triton', dir]);
    expect(out).toMatch(/wrote a Triton model repository for "shapes"/);
    expect(existsSync(join(dir, 'shapes', '1', 'model.onnx'))).toBe(true);
    expect(readFileSync(join(dir, 'shapes', 'labels.txt'), 'utf8')).toBe(`${SHAPE_CLASSES.join('\n')}\n`);
    // The CLI writes what the library's generator makes for the model (which triton.test.ts checks against Triton's schema).
    expect(readFileSync(join(dir, 'shapes', 'config.pbtxt'), 'utf8')).toBe(
      tritonModelConfig({ name: 'shapes', maxBatchSize: 16, maxQueueDelayMs: 5, inputs: [{ name: 'input', shape: [-1, 3, 48, 48] }], outputs: [{ name: 'logits', shape: [-1, 6] }], labelOutput: 'logits' }),
    );
    // Again into the same directory: refused (effnet does not write over what exists) unless --force.
    await expect(run(['export', 'shapes=effnet-shapes', '--triton', dir])).rejects.toThrow(/already holds/);
    await run(['export', 'shapes=effnet-shapes', '--triton', dir, '--force', '--dynamic']);
    expect(readFileSync(join(dir, 'shapes', 'config.pbtxt'), 'utf8')).toMatch(/dims: \[ 3, -1, -1 \]/);
  });

  it('needs exactly one of -o and --triton', async () => {
    await expect(run(['export', 'effnet-shapes'])).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/one of -o FILE .* or --triton DIR/) });
    await expect(run(['export', 'effnet-shapes', '-o', 'x.onnx', '--triton', 'dir'])).rejects.toMatchObject({ exitCode: 2 });
  });
});
