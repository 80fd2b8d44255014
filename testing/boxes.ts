/** A tiny COCO detection dataset for tests: squares and disks of random colour and size on noise. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '@effnet/core';
import sharp from 'sharp';

export async function writeBoxDataset(dir: string, o: { images: number; size: number; seed: number }): Promise<void> {
  mkdirSync(join(dir, 'images'), { recursive: true });
  const r = seededRandom(o.seed);
  const images: object[] = [];
  const annotations: object[] = [];
  for (let i = 0; i < o.images; i++) {
    const s = o.size;
    const px = new Uint8Array(s * s * 3);
    for (let k = 0; k < px.length; k++) px[k] = 90 + Math.floor(r() * 60);
    const objects = 1 + Math.floor(r() * 2);
    for (let j = 0; j < objects; j++) {
      const cls = Math.floor(r() * 2);
      const side = Math.round(s * (0.2 + 0.3 * r()));
      const x0 = Math.floor(r() * (s - side));
      const y0 = Math.floor(r() * (s - side));
      const colour = [Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256)];
      let minX = s;
      let minY = s;
      let maxX = -1;
      let maxY = -1;
      for (let y = y0; y < y0 + side; y++)
        for (let x = x0; x < x0 + side; x++) {
          const inside = cls === 0 || (x - x0 - side / 2 + 0.5) ** 2 + (y - y0 - side / 2 + 0.5) ** 2 <= (side / 2) ** 2;
          if (!inside) continue;
          for (let c = 0; c < 3; c++) px[(y * s + x) * 3 + c] = colour[c]!;
          [minX, minY, maxX, maxY] = [Math.min(minX, x), Math.min(minY, y), Math.max(maxX, x), Math.max(maxY, y)];
        }
      const w = maxX - minX + 1;
      const h = maxY - minY + 1;
      annotations.push({ id: annotations.length + 1, image_id: i + 1, category_id: cls + 1, bbox: [minX, minY, w, h], area: w * h, iscrowd: 0 });
    }
    const file = `${String(i).padStart(4, '0')}.png`;
    await sharp(Buffer.from(px), { raw: { width: s, height: s, channels: 3 } }).png().toFile(join(dir, 'images', file));
    images.push({ id: i + 1, file_name: file, width: s, height: s });
  }
  writeFileSync(join(dir, 'annotations.json'), JSON.stringify({ images, annotations, categories: [{ id: 1, name: 'square' }, { id: 2, name: 'disk' }] }));
}
