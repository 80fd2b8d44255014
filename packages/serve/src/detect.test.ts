/**
 * POST /v2/models/{name}/detect over loopback: the boxes of Detector.detect on the same image, concurrent requests
 * sharing the model's batches, and errors that name the query parameter or the body.
 */
import { Detector, generateScene } from '@effnet/tasks';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceServer } from './server.js';
import { loadServedModel, type ServedModel } from './model.js';

const MODEL = 'efficientdet_phi-4';
let server: InferenceServer;
let model: ServedModel;
let url = '';
let direct: Detector;
const batches: number[] = [];

beforeAll(async () => {
  model = await loadServedModel({ name: 'det', model: MODEL }, { maxBatch: 4, maxDelayMs: 20, maxQueue: 16, timeoutMs: 60_000, threads: 1, onBatch: (_, b) => batches.push(b.rows) });
  server = new InferenceServer([model], { host: '127.0.0.1', port: 0, log: () => {}, version: 'test' });
  url = (await server.listen()).url;
  direct = await Detector.load(MODEL, { threads: 1 });
});
afterAll(async () => {
  await server?.close();
  await model?.dispose();
  await direct?.dispose();
});

async function scenePng(index: number, size = 96): Promise<Buffer> {
  const s = generateScene(4, index, { size, supersample: 1 });
  return sharp(Buffer.from(s.data), { raw: { width: s.width, height: s.height, channels: 3 } }).png().toBuffer();
}

const post = (path: string, body: Uint8Array, type = 'image/png') => fetch(`${url}${path}`, { method: 'POST', body, headers: { 'Content-Type': type } });

describe('POST /detect', () => {
  it("answers Detector.detect's boxes for the image (letterboxed at any size), and batches concurrent requests", async () => {
    const images = await Promise.all([0, 1, 2, 3].map((i) => scenePng(i, 80 + 16 * i)));
    const replies = await Promise.all(images.map((png) => post('/v2/models/det/detect?score=0&max=5', png)));
    for (const [i, r] of replies.entries()) {
      expect(r.status).toBe(200);
      const body = (await r.json()) as { model_name: string; width: number; height: number; detections: { label: string; classId: number; score: number; box: number[] }[] };
      const want = (await direct.detect([images[i]!], { score: 0, maxDetections: 5 })).results[0]!;
      expect([body.model_name, body.width, body.height]).toEqual(['det', want.width, want.height]);
      expect(body.detections.map((d) => d.classId)).toEqual(want.detections.map((d) => d.classId));
      body.detections.forEach((d, k) => {
        expect(d.score).toBeCloseTo(want.detections[k]!.score, 5);
        d.box.forEach((v, c) => expect(v).toBeCloseTo(want.detections[k]!.box[c]!, 3));
      });
      expect(body.detections).toHaveLength(5);
    }
    expect(Math.max(...batches)).toBeGreaterThan(1);
  });

  it('names the bad query parameter or body', async () => {
    const png = await scenePng(0);
    const error = async (r: Response) => [r.status, ((await r.json()) as { error: string }).error];
    expect(await error(await post('/v2/models/det/detect?score=2', png))).toEqual([400, expect.stringMatching(/score.*\[0, 1\]/)]);
    expect(await error(await post('/v2/models/det/detect?max=0', png))).toEqual([400, expect.stringMatching(/max/)]);
    expect(await error(await post('/v2/models/det/detect?nms=fast', png))).toEqual([400, expect.stringMatching(/nms: "fast" is not hard or soft/)]);
    expect(await error(await post('/v2/models/det/detect', Buffer.from('nope')))).toEqual([400, expect.stringMatching(/cannot decode image the request body/)]);
    expect(await error(await post('/v2/models/det/detect', png, 'text/plain'))).toEqual([415, expect.stringMatching(/detect endpoint reads an image body/)]);
    expect(await error(await post('/v2/models/det/classify', png))).toEqual([404, expect.stringMatching(/"det" is a detect model/)]);
  });
});
