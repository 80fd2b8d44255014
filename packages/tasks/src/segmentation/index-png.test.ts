import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { describeWithPeers, runPythonCode } from '../../../../testing/peers.js';
import { classColor, decodeIndexPng, encodeIndexPng, MaskError } from './index-png.js';

describe('index PNG masks', () => {
  it('a palette mask written by encodeIndexPng reads back as the same indices (any size, any index)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer(), (w, h, seed) => {
        const data = new Uint8Array(w * h).map((_, i) => (Math.imul(seed ^ i, 2654435761) >>> 24) & 255);
        const back = decodeIndexPng(encodeIndexPng({ data, width: w, height: h }));
        expect(back).toEqual({ data, width: w, height: h });
      }),
      { numRuns: 40 },
    );
  });

  it('reads 8-bit greyscale PNGs (any filter sharp picks) as indices, refuses RGB with the fix', async () => {
    const data = new Uint8Array(33 * 17).map((_, i) => (i * 7) % 23);
    const grey = await sharp(Buffer.from(data), { raw: { width: 33, height: 17, channels: 1 } }).toColourspace('b-w').png({ adaptiveFiltering: true }).toBuffer();
    expect(decodeIndexPng(grey).data).toEqual(data);
    const rgb = await sharp(Buffer.alloc(4 * 4 * 3, 9), { raw: { width: 4, height: 4, channels: 3 } }).png().toBuffer();
    expect(() => decodeIndexPng(rgb, 'm.png')).toThrow(MaskError);
    expect(() => decodeIndexPng(rgb, 'm.png')).toThrow(/m.png: a RGB image.*class indices/);
  });

  it("VOC's colour map: background black, 255 white, the first classes as VOC draws them", () => {
    expect([0, 1, 2, 3, 15, 255].map(classColor)).toEqual([[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [192, 128, 128], [255, 255, 255]]);
  });
});

describeWithPeers(['PIL'], 'index PNGs against PIL', () => {
  it('palette PNGs of 1, 2, 4 and 8 bits written by PIL read as their indices, and ours read back in PIL', () => {
    const out = JSON.parse(
      runPythonCode(`
import io, json, base64
from PIL import Image
res = {}
for bits, top in ((1, 1), (2, 3), (4, 15), (8, 255)):
    im = Image.new('P', (13, 5))
    im.putdata([(i * 5) % (top + 1) for i in range(65)])
    im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    b = io.BytesIO(); im.save(b, format='PNG', bits=bits)
    res[bits] = base64.b64encode(b.getvalue()).decode()
print(json.dumps(res))
`),
    ) as Record<string, string>;
    for (const [bits, b64] of Object.entries(out)) {
      const top = { 1: 1, 2: 3, 4: 15, 8: 255 }[bits as '1']!;
      const m = decodeIndexPng(Buffer.from(b64, 'base64'));
      expect([bits, m.width, m.height, Array.from(m.data)]).toEqual([bits, 13, 5, Array.from({ length: 65 }, (_, i) => (i * 5) % (top + 1))]);
    }
    const file = `${process.env.TMPDIR ?? '/tmp'}/effnet-mask-${process.pid}.png`;
    writeFileSync(file, encodeIndexPng({ data: Uint8Array.from([0, 1, 2, 255, 7, 3]), width: 3, height: 2 }));
    expect(runPythonCode(`from PIL import Image; im = Image.open('${file}'); print(im.mode, list(im.getdata()))`).trim()).toBe('P [0, 1, 2, 255, 7, 3]');
  });
});
