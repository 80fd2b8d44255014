import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-cli-coco-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const GT = file('gt.json', {
  images: [{ id: 1, width: 100, height: 100, file_name: 'a.jpg' }],
  categories: [
    { id: 3, name: 'cat' },
    { id: 5, name: 'dog' },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 3, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
    { id: 2, image_id: 1, category_id: 5, bbox: [20, 20, 50, 50], area: 2500, iscrowd: 0 },
  ],
});
const DT = file('dt.json', [
  { image_id: 1, category_id: 3, bbox: [0, 0, 10, 10], score: 0.9 },
  { image_id: 1, category_id: 5, bbox: [80, 80, 10, 10], score: 0.8 },
  { image_id: 1, category_id: 5, bbox: [20, 20, 50, 50], score: 0.7 },
]);

async function run(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s));
  return lines.join('\n');
}

describe('effnet coco-eval', () => {
  it("prints pycocotools' 12-line summary", async () => {
    const text = await run(['coco-eval', '--gt', GT, '--dt', DT]);
    const lines = text.split('\n');
    expect(lines).toHaveLength(12);
    // cat: AP 1; dog: a false positive first, AP 0.5 -> mean 0.75.
    expect(lines[0]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.750');
    expect(lines[3]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 1.000');
    expect(lines[5]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000');
    expect(lines[6]).toBe(' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.500');
  });

  it('prints JSON and a per-class table', async () => {
    const json = JSON.parse(await run(['coco-eval', '--gt', GT, '--dt', DT, '--json', '--per-class']));
    expect(json.stats.AP).toBeCloseTo(0.75, 12);
    expect(json.images).toBe(1);
    expect(json.detections).toBe(3);
    expect(json.perClass.map((c: { name: string }) => c.name)).toEqual(['cat', 'dog']);
    const table = await run(['coco-eval', '--gt', GT, '--dt', DT, '--per-class']);
    expect(table).toMatch(/\n3 +cat +1\.000 +1\.000\n5 +dog +0\.500 +0\.500$/);
  });

  it('names the file and the entry on bad input', async () => {
    await expect(run(['coco-eval', '--gt', join(dir, 'nope.json'), '--dt', DT])).rejects.toThrow(/nope\.json: no such file/);
    await expect(run(['coco-eval', '--gt', GT, '--dt', file('broken.json', '[{"image_id": 1,')])).rejects.toThrow(/broken\.json: is not valid JSON/);
    const unknownImage = file('unknown-image.json', [{ image_id: 2, category_id: 3, bbox: [0, 0, 1, 1], score: 1 }]);
    await expect(run(['coco-eval', '--gt', GT, '--dt', unknownImage])).rejects.toThrow(/unknown-image\.json: detection \[0\]: image_id 2 is not an image of the ground truth/);
    const unknownCat = file('unknown-cat.json', [{ image_id: 1, category_id: 0, bbox: [0, 0, 1, 1], score: 1 }]);
    await expect(run(['coco-eval', '--gt', GT, '--dt', unknownCat])).rejects.toThrow(/unknown-cat\.json: detection \[0\]: category_id 0 is not a category/);
    await expect(run(['coco-eval', '--gt', DT, '--dt', DT])).rejects.toThrow(/dt\.json: expected a COCO annotations object/);
    await expect(run(['coco-eval', '--gt', GT])).rejects.toThrow(/effnet coco-eval needs --dt FILE/);
  });

  it('exits 1 with one line from the binary', () => {
    const bin = fileURLToPath(new URL('../../bin/effnet.js', import.meta.url));
    let stderr = '';
    try {
      execFileSync(process.execPath, [bin, 'coco-eval', '--gt', GT, '--dt', join(dir, 'missing.json')], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      stderr = (e as { stderr: string }).stderr;
    }
    expect(stderr).toMatch(/^effnet: .*missing\.json: no such file; check the path\n$/);
  });
});
