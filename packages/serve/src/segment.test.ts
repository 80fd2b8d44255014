/** POST /v2/models/{name}/segment over loopback: the mask of Segmenter.segment on the same image, and clear errors. */
import { decodeIndexPng, generateShapeScene, Segmenter } from '@effnet/tasks';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel, type ServedModel } from './model.js';
import { InferenceServer } from './server.js';

let server: InferenceServer;
let model: ServedModel;
let url = '';
let direct: Segmenter;

beforeAll(async () => {
  model = await loadServedModel({ name: 'seg', model: 'effnet-shapes-seg' }, { maxBatch: 4, maxDelayMs: 5, maxQueue: 16, timeoutMs: 60_000, threads: 1 });
  server = new InferenceServer([model], { host: '127.0.0.1', port: 0, log: () => {}, version: 'test' });
  url = (await server.listen()).url;
  direct = await Segmenter.load('effnet-shapes-seg', { threads: 1 });
});
afterAll(async () => {
  await server?.close();
  await model?.dispose();
  await direct?.dispose();
});

const post = (path: string, body: Uint8Array, type = 'image/png') => fetch(`${url}${path}`, { method: 'POST', body, headers: { 'Content-Type': type } });

describe('POST /segment', () => {
  it("answers Segmenter.segment's mask at the image's own size, as an index PNG, with the class areas", async () => {
    for (const [i, size] of [[0, 64], [1, 80]] as const) {
      const s = generateShapeScene(31, i, { size, supersample: 1 });
      const png = await sharp(Buffer.from(s.image.data), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
      const r = await post('/v2/models/seg/segment', png);
      expect(r.status).toBe(200);
      const body = (await r.json()) as { width: number; height: number; classes: string[]; areas: Record<string, number>; mask_png: string };
      const [want] = await direct.segment([{ source: png, name: 'scene' }]);
      expect([body.width, body.height]).toEqual([size, size]);
      expect(body.classes).toEqual(direct.classes);
      expect(body.areas).toEqual(want!.areas);
      const mask = decodeIndexPng(Buffer.from(body.mask_png, 'base64'), 'mask');
      expect(Buffer.from(mask.data).equals(Buffer.from(want!.mask))).toBe(true);
    }
  });

  it('names a body that is no image, and a model of another task', async () => {
    const error = async (r: Response) => [r.status, ((await r.json()) as { error: string }).error];
    expect(await error(await post('/v2/models/seg/segment', Buffer.from('nope')))).toEqual([400, expect.stringMatching(/cannot decode image the request body/)]);
    expect(await error(await post('/v2/models/seg/segment', Buffer.alloc(0)))).toEqual([400, expect.stringMatching(/segment endpoint needs an image/)]);
    expect(await error(await post('/v2/models/seg/classify', Buffer.from('x')))).toEqual([404, expect.stringMatching(/"seg" is a segment model/)]);
  });
});
