import { join, resolve } from 'node:path';
import { claimOutputDir, writeFileAtomic } from '@effnet/core';
import { defineCommand, type Io } from '../args.js';
import { formatTable } from '../table.js';

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'offline: the embedded models classify fresh shape images, detect and segment shapes in fresh scenes, on ONNX Runtime and TensorFlow.js',
  usage: 'effnet demo [--count 12] [--scenes 6] [--seed N] [--out effnet-demo]',
  options: {
    count: { type: 'number', integer: true, min: 1, max: 1000, default: 12, valueName: 'N', description: 'images to classify' },
    scenes: { type: 'number', integer: true, min: 0, max: 1000, default: 6, valueName: 'N', description: 'scenes to detect shapes in (0: no detection demo)' },
    seed: { type: 'number', integer: true, min: 0, max: 2 ** 32 - 1, valueName: 'N', description: 'seed for the images (default: from the clock)' },
    out: { type: 'string', default: 'effnet-demo', valueName: 'DIR', description: 'where images and pictures go (a directory the demo owns)' },
    force: { type: 'boolean', description: 'write into --out even if another command made it' },
  },
  examples: ['npm start', 'effnet demo --count 24 --seed 7'],
  run: ({ values }, io) => demo(values, io),
});

/**
 * What `npm start` runs: generates labelled shape images, classifies them with the embedded model on both backends,
 * prints predictions and agreement, and writes the images and a contact sheet.
 */
async function demo(values: { count: number; scenes: number; seed?: number; out: string; force: boolean }, io: Io): Promise<number> {
  const [{ Classifier, contactSheetPng, generateShape, SHAPE_CLASSES }, { default: sharp }] = await Promise.all([import('@effnet/tasks'), import('sharp')]);
  const out = io.out;
  const count = values.count;
  const seed = values.seed ?? Date.now() % 1_000_000;
  const dir = resolve(values.out);
  await claimOutputDir(dir, { owner: 'effnet demo', reuseOwn: true, force: values.force, flag: '--out' });
  const images = Array.from({ length: count }, (_, i) => generateShape(seed, i, { size: 48 }));
  const files: string[] = [];
  for (const [i, im] of images.entries()) {
    const file = join(dir, `${String(i).padStart(2, '0')}-${im.className}.png`);
    await writeFileAtomic(file, await sharp(Buffer.from(im.data), { raw: { width: im.width, height: im.height, channels: 3 } }).png().toBuffer());
    files.push(file);
  }
  out(`generated ${count} images of ${SHAPE_CLASSES.join(', ')} (seed ${seed}) in ${dir}`);

  const onnx = await Classifier.load('effnet-shapes', { backend: 'onnx', device: 'cpu' });
  const tfjs = await Classifier.load('effnet-shapes', { backend: 'tfjs', device: 'auto' });
  try {
    const t0 = performance.now();
    const a = await onnx.classify(files, { topK: 1 });
    const t1 = performance.now();
    const b = await tfjs.classify(files, { topK: 1 });
    const t2 = performance.now();
    let agree = 0;
    let correctOnnx = 0;
    let correctTfjs = 0;
    let maxProbDiff = 0;
    const rows = a.results.map((r, i) => {
      const o = r.top[0]!;
      const t = b.results[i]!.top[0]!;
      const truth = images[r.index]!.className;
      if (o.index === t.index) agree++;
      if (o.label === truth) correctOnnx++;
      if (t.label === truth) correctTfjs++;
      maxProbDiff = Math.max(maxProbDiff, Math.abs(o.prob - t.prob));
      return [files[r.index]!.split('/').at(-1)!, truth, `${o.label} ${(100 * o.prob).toFixed(1)}%`, `${t.label} ${(100 * t.prob).toFixed(1)}%`, o.index === t.index ? 'yes' : 'NO'];
    });
    out('');
    out(formatTable(['image', 'true class', `ONNX Runtime (${onnx.device})`, `TensorFlow.js (${tfjs.device})`, 'agree'], rows));
    out('');
    out(`ONNX Runtime: ${correctOnnx}/${count} correct in ${(t1 - t0).toFixed(0)} ms; TensorFlow.js: ${correctTfjs}/${count} correct in ${(t2 - t1).toFixed(0)} ms`);
    out(`the backends agree on ${agree}/${count} images; largest probability difference ${maxProbDiff.toExponential(1)}`);
    const sheet = await contactSheetPng(
      a.results.map((r) => {
        const im = images[r.index]!;
        const p = r.top[0]!;
        return { data: im.data, width: im.width, height: im.height, caption: `${p.label} ${(100 * p.prob).toFixed(0)}%\ntrue: ${im.className}`, ok: p.label === im.className };
      }),
      join(dir, 'contact-sheet.png'),
      { columns: Math.min(6, count), title: `effnet-shapes on ONNX Runtime, seed ${seed}` },
    );
    out(`wrote ${sheet.file}`);
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
  }
  if (values.scenes > 0) await detectionDemo(dir, values.scenes, seed, io);
  await segmentationDemo(dir, seed, io);
  out('');
  out('Real photos need an ImageNet model, which is downloaded once (network needed), then works offline:');
  out('  npx effnet pull efficientnet_b0.ra_in1k');
  out('  npx effnet classify photo.jpg --model efficientnet_b0.ra_in1k');
  return 0;
}

/** A detection counts as found when it has an object's class and IoU >= 0.5 with it (each object found once). */
function matchObjects(objects: readonly { label: number; box: readonly number[] }[], found: readonly { classId: number; box: readonly number[] }[]): number {
  const iou = (a: readonly number[], b: readonly number[]): number => {
    const w = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
    const h = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
    const inter = w * h;
    return inter / ((a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter);
  };
  const used = new Set<number>();
  let hits = 0;
  for (const o of objects) {
    const k = found.findIndex((d, i) => !used.has(i) && d.classId === o.label + 1 && iou(d.box, o.box) >= 0.5);
    if (k >= 0) {
      used.add(k);
      hits++;
    }
  }
  return hits;
}

/**
 * The embedded detector on fresh scenes: boxes on both backends, how many of the true objects each found, and the
 * scenes with their boxes drawn (one PNG each, and a contact sheet of them).
 */
async function detectionDemo(dir: string, count: number, seed: number, io: Io): Promise<void> {
  const out = io.out;
  const [{ Detector, detectionsPng, contactSheetPng, generateScene }, { default: sharp }] = await Promise.all([import('@effnet/tasks'), import('sharp')]);
  const scenes = Array.from({ length: count }, (_, i) => generateScene(seed, i, { size: 128 }));
  const onnx = await Detector.load('effnet-shapes-det', { backend: 'onnx', device: 'cpu' });
  const tfjs = await Detector.load('effnet-shapes-det', { backend: 'tfjs', device: 'auto' });
  try {
    const images = scenes.map((s, i) => ({ data: s.data, width: s.width, height: s.height, name: `scene-${String(i).padStart(2, '0')}` }));
    const t0 = performance.now();
    const a = await onnx.detect(images, { score: 0.5 });
    const t1 = performance.now();
    const b = await tfjs.detect(images, { score: 0.5 });
    const t2 = performance.now();
    let objects = 0;
    let foundOnnx = 0;
    let foundTfjs = 0;
    let agree = 0;
    const drawn: { data: Uint8Array; width: number; height: number; caption: string; ok: boolean }[] = [];
    const rows: string[][] = [];
    for (const [i, r] of a.results.entries()) {
      const scene = scenes[i]!;
      const t = b.results[i]!;
      const hitsA = matchObjects(scene.objects, r.detections);
      const hitsB = matchObjects(scene.objects, t.detections);
      objects += scene.objects.length;
      foundOnnx += hitsA;
      foundTfjs += hitsB;
      const same = r.detections.length === t.detections.length && r.detections.every((d, k) => d.classId === t.detections[k]!.classId);
      if (same) agree++;
      const names = (ds: readonly { label: string; score: number }[]) => ds.map((d) => `${d.label} ${(100 * d.score).toFixed(0)}%`).join(', ') || '-';
      rows.push([`${r.name}.png`, scene.objects.map((o) => o.className).join(', '), `${names(r.detections)} (${hitsA}/${scene.objects.length})`, `${hitsB}/${scene.objects.length}`, same ? 'yes' : 'NO']);
      const file = join(dir, 'detections', `${r.name}.png`);
      await detectionsPng(images[i]!, r.detections, file);
      const raw = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      drawn.push({ data: new Uint8Array(raw.data), width: raw.info.width, height: raw.info.height, caption: `${hitsA}/${scene.objects.length} found`, ok: hitsA === scene.objects.length && r.detections.length === hitsA });
    }
    out('');
    out(formatTable(['scene', 'true objects', `ONNX Runtime (${onnx.device}): detections, found`, `TensorFlow.js (${tfjs.device}): found`, 'agree'], rows));
    out('');
    out(`effnet-shapes-det found ${foundOnnx}/${objects} objects on ONNX Runtime in ${(t1 - t0).toFixed(0)} ms, ${foundTfjs}/${objects} on TensorFlow.js in ${(t2 - t1).toFixed(0)} ms (class right, IoU >= 0.5, score >= 0.5)`);
    out(`the backends agree on ${agree}/${count} scenes`);
    const sheet = await contactSheetPng(drawn, join(dir, 'detections.png'), { columns: Math.min(6, count), thumbSize: 128, title: `effnet-shapes-det on ONNX Runtime, seed ${seed}` });
    out(`wrote ${sheet.file} and ${count} scene${count === 1 ? '' : 's'} with boxes in ${join(dir, 'detections')}`);
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
  }
}

/** The embedded segmenter on fresh generated scenes, on both backends: mIoU, agreement, and an overlay contact sheet. */
async function segmentationDemo(dir: string, seed: number, io: Io): Promise<void> {
  const { contactSheetPng, generateShapeScene, overlayMask, Registry, Segmenter, SegmentationConfusion } = { ...(await import('@effnet/tasks')), ...(await import('@effnet/zoo')) };
  if (!(await Registry.load()).find('effnet-shapes-seg')) return;
  // 48 scenes scored (on 6, one stray pixel of an absent class weighs a seventh of the mean), the first 6 drawn.
  const scenes = Array.from({ length: 48 }, (_, i) => generateShapeScene(seed + 1, i, { size: 64 }));
  const images = scenes.map((s) => s.image);
  const onnx = await Segmenter.load('effnet-shapes-seg', { backend: 'onnx', device: 'cpu' });
  const tfjs = await Segmenter.load('effnet-shapes-seg', { backend: 'tfjs', device: 'auto' });
  try {
    const a = await onnx.segmentImages(images);
    const b = await tfjs.segmentImages(images);
    const score = (masks: Uint8Array[]) => {
      const cm = new SegmentationConfusion(onnx.classes.length);
      masks.forEach((m, i) => cm.add(scenes[i]!.mask.data, m));
      return cm.metrics().mIoU;
    };
    let same = 0;
    let total = 0;
    a.forEach((r, i) => r.mask.forEach((v, k) => ((total++, v === b[i]!.mask[k] && same++))));
    io.out('');
    io.out(`effnet-shapes-seg on ${scenes.length} fresh scenes: mIoU ${(100 * score(a.map((r) => r.mask))).toFixed(1)}% on ONNX Runtime, ${(100 * score(b.map((r) => r.mask))).toFixed(1)}% on TensorFlow.js; the backends agree on ${((100 * same) / total).toFixed(2)}% of the pixels`);
    const tiles = scenes.slice(0, 6).flatMap((s, i) => [
      { ...s.image, caption: 'scene' },
      { ...overlayMask(s.image, a[i]!.mask), caption: Object.keys(a[i]!.areas).filter((c) => c !== 'background').join(', ') || '(none)' },
    ]);
    const sheet = await contactSheetPng(tiles, join(dir, 'segmentation-overlays.png'), { columns: 4, thumbSize: 128, title: `effnet-shapes-seg on ONNX Runtime, seed ${seed + 1}` });
    io.out(`wrote ${sheet.file}`);
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
  }
}
