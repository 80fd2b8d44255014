import { InvalidSpecError } from '@effnet/core';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageFolderError } from './errors.js';
import { isImageFile, loadImageFolders, scanImageFolder, splitSamples } from './image-folder.js';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'effnet-imagefolder-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Creates empty files (scanning never reads them) under a fresh root. */
async function tree(name: string, files: string[]): Promise<string> {
  const root = join(base, name);
  await mkdir(root, { recursive: true });
  for (const f of files) {
    if (f.endsWith('/')) {
      await mkdir(join(root, f), { recursive: true });
    } else {
      await mkdir(join(root, f, '..'), { recursive: true });
      await writeFile(join(root, f), '');
    }
  }
  return root;
}

describe('scanImageFolder', () => {
  it('lists sorted classes and their images like torchvision (recursive, sorted, extension filter)', async () => {
    const root = await tree('basic', [
      'b/2.png', 'b/10.PNG', 'b/notes.txt', 'b/.hidden.png', 'b/sub/x.webp', 'b/sub-a/y.jpeg',
      'a/img.JPG', 'C/z.Jpeg', '.cache/w.png', 'README.md',
    ]);
    const { root: abs, classes, samples } = await scanImageFolder(root);
    expect(abs).toBe(root);
    expect(classes).toEqual(['C', 'a', 'b']); // code-unit order, as Python's sorted()
    expect(samples.map((s) => [s.path.slice(root.length + 1), s.label])).toEqual([
      ['C/z.Jpeg', 0],
      ['a/img.JPG', 1],
      ['b/10.PNG', 2],
      ['b/2.png', 2],
      // sorted(os.walk(...)) orders directories as strings: "b" < "b/sub" < "b/sub-a".
      ['b/sub/x.webp', 2],
      ['b/sub-a/y.jpeg', 2],
    ]);
  });

  it('sorts nested directories by path, as sorted(os.walk(...))', async () => {
    const root = await tree('nested', ['k/a/b/1.png', 'k/a-c/2.png', 'k/a/3.png']);
    const { samples } = await scanImageFolder(root);
    // "k/a" < "k/a-c" < "k/a/b" ('-' sorts before '/').
    expect(samples.map((s) => s.path.slice(root.length + 1))).toEqual(['k/a/3.png', 'k/a-c/2.png', 'k/a/b/1.png']);
  });

  it('follows symbolic links to class directories', async () => {
    const target = await tree('link-target', ['pics/1.png']);
    const root = await tree('linked', ['real/0.png']);
    await symlink(join(target, 'pics'), join(root, 'viaLink'));
    const { classes, samples } = await scanImageFolder(root);
    expect(classes).toEqual(['real', 'viaLink']);
    expect(samples.map((s) => s.label)).toEqual([0, 1]);
  });

  it('says what is wrong and what would fix it', async () => {
    await expect(scanImageFolder(join(base, 'missing'))).rejects.toThrow(/does not exist; check the path/);
    const file = join(base, 'plain.png');
    await writeFile(file, '');
    await expect(scanImageFolder(file)).rejects.toThrow(/is a file, not a directory/);
    const flat = await tree('flat', ['1.png', '2.jpg']);
    await expect(scanImageFolder(flat)).rejects.toThrow(/no class sub-directories \(it holds 2 image file\(s\) directly\)/);
    const empty = await tree('empty-class', ['cat/1.png', 'dog/readme.txt', 'emu/']);
    const err = await scanImageFolder(empty).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageFolderError);
    expect((err as Error).message).toMatch(/no image files in the class directories "dog", "emu"/);
    expect((err as Error).message).toMatch(/\.jpg \.jpeg \.png \.webp/);
  });

  it('recognises image extensions in any case', () => {
    expect(['a.jpg', 'a.JPEG', 'a.Png', 'a.webp'].every(isImageFile)).toBe(true);
    expect(['a.gif', 'jpg', '.png', 'a.png.txt', '.x.jpg'].some(isImageFile)).toBe(false);
  });
});

describe('splitSamples', () => {
  const samplesArb = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 200 }).map((labels) => labels.map((label, id) => ({ id, label })));

  it('partitions every class, stratified, deterministically, keeping order', () => {
    fc.assert(
      fc.property(samplesArb, fc.double({ min: 0, max: 0.99, noNaN: true }), fc.integer(), (samples, valFraction, seed) => {
        const { train, val } = splitSamples(samples, { valFraction, seed });
        expect(splitSamples(samples, { valFraction, seed })).toEqual({ train, val });
        expect([...train, ...val].map((s) => s.id).sort((a, b) => a - b)).toEqual(samples.map((s) => s.id));
        for (const half of [train, val]) for (let i = 1; i < half.length; i++) expect(half[i]!.id).toBeGreaterThan(half[i - 1]!.id);
        for (let label = 0; label <= 5; label++) {
          const n = samples.filter((s) => s.label === label).length;
          const v = val.filter((s) => s.label === label).length;
          let expected = Math.round(n * valFraction);
          if (valFraction > 0 && n >= 2) expected = Math.min(Math.max(expected, 1), n - 1);
          if (n < 2) expected = 0;
          expect(v).toBe(expected);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("splits a class the same way whatever the other classes are", () => {
    const cats = Array.from({ length: 20 }, (_, i) => ({ id: `cat${i}`, label: 0 }));
    const dogs = Array.from({ length: 13 }, (_, i) => ({ id: `dog${i}`, label: 1 }));
    const alone = splitSamples(cats, { valFraction: 0.25, seed: 4 }).val.map((s) => s.id);
    const mixed = splitSamples([...dogs, ...cats], { valFraction: 0.25, seed: 4 }).val.filter((s) => s.label === 0).map((s) => s.id);
    expect(mixed).toEqual(alone);
    expect(alone.length).toBe(5);
    expect(splitSamples(cats, { valFraction: 0.25, seed: 5 }).val.map((s) => s.id)).not.toEqual(alone);
  });

  it('rejects a fraction outside [0, 1)', () => {
    for (const f of [-0.1, 1, 1.5, Number.NaN]) expect(() => splitSamples([], { valFraction: f })).toThrow(InvalidSpecError);
  });
});

describe('loadImageFolders', () => {
  it('splits one folder with a seed', async () => {
    const files = ['x', 'y'].flatMap((c) => Array.from({ length: 10 }, (_, i) => `${c}/${i}.png`));
    const root = await tree('one', files);
    const a = await loadImageFolders({ train: root, valFraction: 0.2, seed: 1 });
    expect(a.source).toBe('seeded');
    expect(a.classes).toEqual(['x', 'y']);
    expect([a.train.length, a.val.length]).toEqual([16, 4]);
    expect(await loadImageFolders({ train: root, valFraction: 0.2, seed: 1 })).toEqual(a);
  });

  it('uses separate folders with the same classes, and names the difference when they differ', async () => {
    const train = await tree('tr', ['cat/1.png', 'dog/1.png', 'emu/1.png']);
    const val = await tree('va', ['cat/2.png', 'dog/2.png', 'emu/2.png']);
    const both = await loadImageFolders({ train, val });
    expect(both.source).toBe('folders');
    expect(both.val.map((s) => s.label)).toEqual([0, 1, 2]);
    const other = await tree('va2', ['cat/2.png', 'dog/2.png', 'fox/2.png']);
    await expect(loadImageFolders({ train, val: other })).rejects.toThrow(/only in train .*"emu"; only in val .*"fox"/);
  });
});
