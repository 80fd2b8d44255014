import { parseArgs } from 'node:util';
import { EffnetError } from '@effnet/core';
import { checkCocoGroundTruth, evaluateCoco, formatCocoSummary, readJsonFile } from '@effnet/tasks';
import { formatTable } from '../table.js';

export const COCO_EVAL_USAGE = `  effnet coco-eval --gt annotations.json --dt detections.json [--json] [--per-class]
                                                    COCO bbox mAP (the 12 numbers pycocotools prints)`;

/** `effnet coco-eval`: pycocotools' summary (or JSON) for a COCO annotations file and a COCO results file. */
export async function cocoEvalCli(args: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { gt: { type: 'string' }, dt: { type: 'string' }, json: { type: 'boolean', default: false }, 'per-class': { type: 'boolean', default: false } },
  });
  if (!values.gt || !values.dt) throw new EffnetError(`effnet coco-eval needs --gt and --dt\n\n${COCO_EVAL_USAGE}`);
  const gt = checkCocoGroundTruth(await readJsonFile(values.gt), values.gt);
  const result = evaluateCoco(gt, await readJsonFile(values.dt), { gtSource: values.gt, dtSource: values.dt });
  if (values.json) {
    out(JSON.stringify({ stats: result.stats, images: result.numImages, detections: result.numDetections, ...(values['per-class'] ? { perClass: result.perClass } : {}) }));
    return 0;
  }
  formatCocoSummary(result.stats).forEach((l) => out(l));
  if (values['per-class']) {
    const fmt = (v: number) => (v < 0 ? 'n/a' : v.toFixed(3));
    out('');
    out(formatTable(['id', 'category', 'AP', 'AP50'], result.perClass.map((c) => [String(c.categoryId), c.name, fmt(c.AP), fmt(c.AP50)])));
  }
  return 0;
}
