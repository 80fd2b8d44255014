/**
 * Random COCO evaluation cases (ground truth + results) built from fast-check generators, shaped to reach every
 * branch of COCOeval: every area range and its inclusive bounds, crowd and `ignore` annotations, annotation areas that
 * differ from the box area, ground-truth id 0, near-duplicate detections (so AP is neither 0 nor 1), score ties, more
 * than 100 detections on an image, categories with detections but no ground truth and the reverse, images with
 * neither, and (optionally) detections of categories that are not in the ground truth.
 */
import fc from 'fast-check';
import type { CocoAnnotation, CocoDetection, CocoGroundTruth } from '../src/detection/coco-format.js';

export interface CocoCase {
  gt: CocoGroundTruth;
  dt: CocoDetection[];
  /** Some detections use category ids outside the ground truth (evaluate with unknownCategories: 'ignore'). */
  unknownCategories: boolean;
}

type G = fc.GeneratorValue;

const round2 = (x: number) => Math.round(x * 100) / 100;

/** A box side in one of the size classes COCO's area ranges split (sqrt of 32^2 and 96^2 included exactly). */
function side(g: G): number {
  switch (g(fc.integer, { min: 0, max: 6 })) {
    case 0:
      return round2(g(fc.double, { min: 0.5, max: 20, noNaN: true }));
    case 1:
      return g(fc.constantFrom, 32, 96, 31, 33, 95, 97);
    case 2:
      return round2(g(fc.double, { min: 20, max: 40, noNaN: true }));
    case 3:
      return round2(g(fc.double, { min: 40, max: 110, noNaN: true }));
    default:
      return round2(g(fc.double, { min: 100, max: 400, noNaN: true }));
  }
}

/** A detection near `box` [x, y, w, h]: small jitter (a likely match) up to large (a likely miss). */
function jitter(g: G, box: number[]): number[] {
  const level = g(fc.constantFrom, 0, 0.02, 0.08, 0.2, 0.5);
  const j = (scale: number) => round2(g(fc.double, { min: -level, max: level, noNaN: true }) * scale);
  const w = Math.max(0.5, box[2]! + j(box[2]!));
  const h = Math.max(0.5, box[3]! + j(box[3]!));
  return [round2(box[0]! + j(box[2]!)), round2(box[1]! + j(box[3]!)), round2(w), round2(h)];
}

export function cocoCaseArbitrary(): fc.Arbitrary<CocoCase> {
  return fc.gen().map((g): CocoCase => {
    const nImages = g(fc.integer, { min: 1, max: 8 });
    const nCats = g(fc.integer, { min: 1, max: 5 });
    const imageIds: number[] = g(() => fc.uniqueArray(fc.integer({ min: 1, max: 5000 }), { minLength: nImages, maxLength: nImages }));
    const catIds: number[] = g(() => fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: nCats, maxLength: nCats }));
    const firstAnnId = g(fc.constantFrom, 1, 1, 1, 0); // id 0 is a cocoapi corner case
    const crowdRate = g(fc.constantFrom, 0, 0.05, 0.2);
    const tieScores = g(fc.boolean);
    const unknownCategories = g(fc.integer, { min: 0, max: 9 }) === 0;
    const annotations: CocoAnnotation[] = [];
    const dt: CocoDetection[] = [];
    const score = (): number => (tieScores ? g(fc.constantFrom, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1) : round2(g(fc.double, { min: 0, max: 1, noNaN: true })));

    for (const imageId of imageIds) {
      // Ground truth: 0-30 boxes, a third of the images without any.
      const nGt = g(fc.integer, { min: 0, max: 2 }) === 0 ? 0 : g(fc.integer, { min: 0, max: 30 });
      const boxes: { box: number[]; cat: number }[] = [];
      for (let i = 0; i < nGt; i++) {
        const w = side(g);
        const h = g(fc.boolean) ? w : side(g);
        const box = [round2(g(fc.double, { min: 0, max: 600, noNaN: true })), round2(g(fc.double, { min: 0, max: 600, noNaN: true })), w, h];
        const cat = g(fc.constantFrom, ...catIds);
        const areaKind = g(fc.integer, { min: 0, max: 9 });
        const area = areaKind < 6 ? w * h : areaKind < 8 ? round2(w * h * g(fc.double, { min: 0.3, max: 1, noNaN: true })) : g(fc.constantFrom, 1024, 9216, 1023.5, 9216.5);
        const ann: CocoAnnotation = { id: annotations.length + firstAnnId, image_id: imageId, category_id: cat, bbox: box, area, iscrowd: g(fc.double, { min: 0, max: 1, noNaN: true }) < crowdRate ? 1 : 0 };
        if (g(fc.integer, { min: 0, max: 9 }) === 0) ann.ignore = 1;
        annotations.push(ann);
        boxes.push({ box, cat });
      }
      // Detections: 0-150, mostly few, sometimes more than 100; near copies of the ground truth plus random boxes.
      const sizeClass = g(fc.integer, { min: 0, max: 9 });
      const nDt = sizeClass === 0 ? 0 : sizeClass === 9 ? g(fc.integer, { min: 90, max: 150 }) : g(fc.integer, { min: 0, max: 35 });
      for (let i = 0; i < nDt; i++) {
        let box: number[];
        let cat: number;
        if (boxes.length > 0 && g(fc.integer, { min: 0, max: 3 }) > 0) {
          const src = boxes[g(fc.integer, { min: 0, max: boxes.length - 1 })]!;
          box = jitter(g, src.box);
          cat = g(fc.integer, { min: 0, max: 4 }) === 0 ? g(fc.constantFrom, ...catIds) : src.cat;
        } else {
          const w = side(g);
          box = [round2(g(fc.double, { min: 0, max: 600, noNaN: true })), round2(g(fc.double, { min: 0, max: 600, noNaN: true })), w, side(g)];
          cat = g(fc.constantFrom, ...catIds);
        }
        if (unknownCategories && g(fc.integer, { min: 0, max: 5 }) === 0) cat = 1000 + g(fc.integer, { min: 0, max: 3 });
        dt.push({ image_id: imageId, category_id: cat, bbox: box, score: score() });
      }
    }
    // Shuffle the file orders: evaluation must sort ids itself, and detection order decides ties.
    const images = g(fc.shuffledSubarray, imageIds.map((id) => ({ id, width: 640, height: 640, file_name: `${id}.jpg` })), { minLength: nImages, maxLength: nImages });
    const categories = g(fc.shuffledSubarray, catIds.map((id) => ({ id, name: `c${id}` })), { minLength: nCats, maxLength: nCats });
    return { gt: { images, annotations, categories }, dt, unknownCategories };
  });
}
