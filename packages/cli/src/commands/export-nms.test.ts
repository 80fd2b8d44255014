import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { main } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-export-nms-'));

async function run(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s));
  return lines.join('\n');
}

describe('effnet export --nms', () => {
  it('writes a detector whose outputs are boxes, scores, classes and num_detections', async () => {
    const file = join(dir, 'det.onnx');
    const text = await run(['export', 'tf_efficientdet_lite0', '--nms', '--score', '0.2', '--max', '7', '--resolution', '128', '-o', file]);
    expect(text).toMatch(/random initialisation/);
    expect(text).toMatch(/output "boxes", "scores", "classes", "num_detections"/);
    const s = await ort.InferenceSession.create(file);
    expect(s.outputNames).toEqual(['boxes', 'scores', 'classes', 'num_detections']);
    const out = await s.run({ input: new ort.Tensor('float32', new Float32Array(2 * 3 * 128 * 128).fill(0.3), [2, 3, 128, 128]) });
    expect(out.boxes!.dims).toEqual([2, 7, 4]);
    expect(out.num_detections!.dims).toEqual([2]);
    for (const v of out.scores!.data as Float32Array) expect(v === 0 || v > 0.2).toBe(true);
    await s.release();
  });

  it('names the options that do not fit', async () => {
    const o = join(dir, 'x.onnx');
    await expect(run(['export', 'tf_efficientdet_lite0', '--nms', '--dynamic', '-o', o])).rejects.toThrow(/--nms needs a fixed input size/);
    await expect(run(['export', 'efficientnet_b0', '--nms', '-o', o])).rejects.toThrow(/--nms is for detectors; "efficientnet_b0" is a classifier/);
    await expect(run(['export', 'tf_efficientdet_lite0', '--score', '0.5', '-o', o])).rejects.toThrow(/--score and --max go with --nms/);
  });
});
