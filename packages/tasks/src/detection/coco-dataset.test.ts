import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCocoDetection, loadDetectionImage } from './coco-dataset.js';
import { CocoFormatError, DetectionDatasetError } from './errors.js';

const base = mkdtempSync(join(tmpdir(), 'effnet-cocods-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

async function png(path: string, width: number, height: number): Promise<void> {
  const data = Buffer.alloc(width * height * 3, 90);
  writeFileSync(path, await sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer());
}

let n = 0;
/** A dataset dir with a.png (40x30) in images/, b.png (20x20) at the top level, and `edit` applied to the annotations. */
async function dataset(edit: (a: Record<string, any>) => void = () => undefined): Promise<string> {
  const dir = join(base, `ds${n++}`);
  mkdirSync(join(dir, 'images'), { recursive: true });
  await png(join(dir, 'images', 'a.png'), 40, 30);
  await png(join(dir, 'b.png'), 20, 20);
  const ann: Record<string, any> = {
    images: [
      { id: 7, file_name: 'a.png', width: 40, height: 30 },
      { id: 3, file_name: 'b.png', width: 20, height: 20 },
    ],
    categories: [
      { id: 18, name: 'dog' },
      { id: 1, name: 'person' },
    ],
    annotations: [
      { id: 1, image_id: 7, category_id: 1, bbox: [1, 2, 10, 12], area: 120, iscrowd: 0 },
      { id: 2, image_id: 7, category_id: 18, bbox: [30, 20, 10.5, 10], area: 100, iscrowd: 0 },
      { id: 3, image_id: 7, category_id: 18, bbox: [0, 0, 40, 30], area: 1200, iscrowd: 1 },
      { id: 4, image_id: 3, category_id: 1, bbox: [5, 5, 0.5, 4], area: 2, iscrowd: 0 },
    ],
  };
  edit(ann);
  writeFileSync(join(dir, 'annotations.json'), JSON.stringify(ann));
  return dir;
}

describe('loadCocoDetection', () => {
  it('reads samples with contiguous classes in category file order, images from images/ or the root', async () => {
    const dir = await dataset();
    const ds = await loadCocoDetection(dir);
    expect(ds.categories).toEqual([
      { id: 18, name: 'dog' },
      { id: 1, name: 'person' },
    ]);
    const [a, b] = ds.samples;
    expect(a).toMatchObject({ imageId: 7, file: join(dir, 'images', 'a.png'), width: 40, height: 30, classes: [1, 0] });
    // Within the 1 px tolerance the box is clipped to the image; the crowd box is kept apart.
    expect(a!.boxes).toEqual([
      [1, 2, 11, 14],
      [30, 20, 40, 30],
    ]);
    expect(a!.ignoredBoxes).toEqual([[0, 0, 40, 30]]);
    // Boxes under 1 px wide are not trained on (effdet's parser), but stay in the ground truth for evaluation.
    expect(b).toMatchObject({ imageId: 3, file: join(dir, 'b.png'), boxes: [], classes: [] });
    expect(ds.groundTruth.annotations).toHaveLength(4);
    expect((await loadDetectionImage(a!)).width).toBe(40);
  });

  it('names a box outside its image, with the annotation id and the image', async () => {
    const dir = await dataset((a) => (a.annotations[1].bbox = [30, 20, 15, 10]));
    await expect(loadCocoDetection(dir)).rejects.toThrow(DetectionDatasetError);
    await expect(loadCocoDetection(dir)).rejects.toThrow(/annotations\[1\] \(id 2\) on image 7 "a\.png": box \[30, 20, 15, 10\] reaches outside the 40x30 image/);
  });

  it('names unknown categories, duplicate ids and non-positive sizes', async () => {
    await expect(loadCocoDetection(await dataset((a) => (a.annotations[0].category_id = 5)))).rejects.toThrow(CocoFormatError);
    await expect(loadCocoDetection(await dataset((a) => (a.annotations[0].category_id = 5)))).rejects.toThrow(/annotations\[0\] \(id 1\): category_id 5 is not in "categories" \(known: 18, 1\)/);
    await expect(loadCocoDetection(await dataset((a) => (a.images[1].id = 7)))).rejects.toThrow(/images\[1\] \(id 7\): duplicate id 7/);
    await expect(loadCocoDetection(await dataset((a) => (a.images[0].width = 0)))).rejects.toThrow(/images\[0\] \(id 7\) "a\.png" has a non-positive or missing size/);
    await expect(loadCocoDetection(await dataset((a) => (a.annotations[0].bbox = [1, 2, 0, 5])))).rejects.toThrow(/\(id 1\) on image 7 "a\.png": box \[1, 2, 0, 5\] has a non-positive width or height/);
  });

  it('lists missing image files', async () => {
    const dir = await dataset((a) => a.images.push({ id: 9, file_name: 'gone.jpg', width: 5, height: 5 }, { id: 10, file_name: 'sub/x.jpg', width: 5, height: 5 }));
    await expect(loadCocoDetection(dir)).rejects.toThrow(/2 image files not found in .*images or .*: "gone\.jpg" \(image 9\); "sub\/x\.jpg" \(image 10\)/);
  });

  it('says what is missing for a bad directory, and names a decoded image of another size', async () => {
    await expect(loadCocoDetection(join(base, 'nope'))).rejects.toThrow(/does not exist/);
    const empty = join(base, 'empty');
    mkdirSync(empty);
    await expect(loadCocoDetection(empty)).rejects.toThrow(/has no annotations\.json/);
    const dir = await dataset((a) => (a.images[0].height = 31));
    const ds = await loadCocoDetection(dir);
    await expect(loadDetectionImage(ds.samples[0]!)).rejects.toThrow(/a\.png": is 40x30 but its annotation \(image 7\) says 40x31/);
  });
});
