import { defineCommand } from '../args.js';
import { formatTable } from '../table.js';

export const cocoEvalCommand = defineCommand({
  name: 'coco-eval',
  summary: 'COCO bbox mAP: the 12 numbers pycocotools prints, equal to them',
  usage: 'effnet coco-eval --gt annotations.json --dt detections.json [--json] [--per-class]',
  options: {
    gt: { type: 'string', required: true, valueName: 'FILE', description: 'COCO annotations (images, annotations, categories)' },
    dt: { type: 'string', required: true, valueName: 'FILE', description: 'COCO results: [{image_id, category_id, bbox: [x, y, w, h], score}, ...]' },
    json: { type: 'boolean', description: 'print JSON (stats under their names AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl)' },
    'per-class': { type: 'boolean', description: 'also AP and AP50 per category' },
  },
  examples: ['effnet coco-eval --gt val/annotations.json --dt detections.json', 'effnet coco-eval --gt val/annotations.json --dt detections.json --json --per-class'],
  async run({ values: v }, io) {
    const { checkCocoGroundTruth, evaluateCoco, formatCocoSummary, readJsonFile } = await import('@effnet/tasks');
    const gt = checkCocoGroundTruth(await readJsonFile(v.gt), v.gt);
    const result = evaluateCoco(gt, await readJsonFile(v.dt), { gtSource: v.gt, dtSource: v.dt });
    if (v.json) {
      io.out(JSON.stringify({ stats: result.stats, images: result.numImages, detections: result.numDetections, ...(v['per-class'] ? { perClass: result.perClass } : {}) }));
      return 0;
    }
    formatCocoSummary(result.stats).forEach((l) => io.out(l));
    if (v['per-class']) {
      const fmt = (x: number) => (x < 0 ? 'n/a' : x.toFixed(3));
      io.out('');
      io.out(formatTable(['id', 'category', 'AP', 'AP50'], result.perClass.map((c) => [String(c.categoryId), c.name, fmt(c.AP), fmt(c.AP50)])));
    }
    return 0;
  },
});
