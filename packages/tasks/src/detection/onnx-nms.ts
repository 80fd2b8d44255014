/**
 * EfficientDet post-processing as ONNX nodes, appended to a compiled detector by backend-onnx's generic `extend` hook
 * (`compileToOnnx(graph, weights, { extend: detectionNmsExtension(graph) })`): the same steps as postprocess.ts, so
 * that a model exported with them gives the TypeScript path's detections.
 *
 * Per image: the raw class logits of every level flattened in effdet's order (anchor * classes + class), the top
 * `maxDetectionPoints` (5000) by TopK; their box codes decoded against the anchors (a constant: each anchor's centre
 * and size, float32 as box-coder.ts computes them); scores = sigmoid(logit); class-aware NonMaxSuppression at IoU 0.5
 * (each candidate scores only in its own class's row, the rest -1, below any threshold); the kept candidates ranked
 * by score (TopK again, ties to the earlier candidate) and cut at `maxDetections`.
 *
 * Outputs, padded with zeros after `num_detections[n]` rows:
 *   boxes          float32 [N, K, 4]  x1, y1, x2, y2 in the network input's pixels (not clipped: boxes may reach past
 *                  the input's edges, as effdet's without img_info; clip to the letterboxed content and divide by the
 *                  resize factor for original pixels)
 *   scores         float32 [N, K]     sigmoid scores, best first
 *   classes        int64 [N, K]       1-based class ids as effdet numbers them (COCO category ids for COCO models)
 *   num_detections int64 [N]
 * with K = maxDetections. Scores must be above `scoreThreshold` (strictly, as NonMaxSuppression's threshold); boxes
 * below it never suppress a box above it, so this equals filtering the TypeScript path's detections.
 *
 * Differences from the TypeScript path: NonMaxSuppression computes IoU in its own float32 order, so an IoU within an
 * ulp of the threshold may decide the other way; equal scores (ties) are visited in the runtime's order.
 */
import type { OnnxDataType, OnnxGraphExtension, OnnxGraphInfo, OnnxNode, OnnxTensor, OnnxValueInfo } from '@effnet/backend-onnx';
import { type Graph, InvalidSpecError, readDetectionMetadata } from '@effnet/core';
import { generateAnchors } from './anchors.js';

/** TensorProto.DataType values (type-only import above: the backend stays a choice of the caller). */
const FLOAT: OnnxDataType = 1;
const INT64: OnnxDataType = 7;

export interface OnnxNmsOptions {
  /** Keep detections scoring above this (default 0.05). */
  scoreThreshold?: number;
  /** Detections per image, the K of the outputs (default 100). */
  maxDetections?: number;
  /** IoU above which NMS drops a box (default 0.5). */
  iouThreshold?: number;
  /** Candidates kept before NMS (default 5000, effdet's). */
  maxDetectionPoints?: number;
}

/** The output names of an exported detector with NMS. */
export const NMS_OUTPUTS = ['boxes', 'scores', 'classes', 'num_detections'] as const;

const f = Math.fround;

/**
 * The `extend` hook that appends decoding, top-k and class-aware NMS to the compiled `graph` (an EfficientDet built by
 * buildEfficientDet, with a fixed input size: the anchors are constants).
 */
export function detectionNmsExtension(graph: Graph, options: OnnxNmsOptions = {}): (info: OnnxGraphInfo) => OnnxGraphExtension {
  const m = readDetectionMetadata(graph);
  const input = graph.inputs[0]!;
  if (input.height === null || input.width === null)
    throw new InvalidSpecError('input size', 'dynamic', 'a fixed size: the anchors become constants of the model (export with a --resolution, not --dynamic)');
  const { scoreThreshold = 0.05, maxDetections = 100, iouThreshold = 0.5, maxDetectionPoints = 5000 } = options;
  if (!(scoreThreshold >= 0 && scoreThreshold < 1)) throw new InvalidSpecError('score threshold', scoreThreshold, 'a number in [0, 1)');
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) throw new InvalidSpecError('IoU threshold', iouThreshold, 'a number in [0, 1]');
  if (!(Number.isInteger(maxDetections) && maxDetections >= 1)) throw new InvalidSpecError('max detections', maxDetections, 'a positive integer');
  if (!(Number.isInteger(maxDetectionPoints) && maxDetectionPoints >= 1)) throw new InvalidSpecError('max detection points', maxDetectionPoints, 'a positive integer');
  const anchors = generateAnchors({ minLevel: m.minLevel, maxLevel: m.maxLevel, numScales: m.numScales, aspectRatios: m.aspectRatios, anchorScale: m.anchorScale, imageSize: [input.height, input.width] });
  const C = m.numClasses;
  const candidates = Math.min(maxDetectionPoints, anchors.count * C);
  const K = Math.min(maxDetections, candidates);
  // Each anchor's [y centre, x centre, height, width], float32 as decodeBoxInto computes them.
  const params = new Float32Array(anchors.count * 4);
  for (let i = 0; i < anchors.count; i++) {
    const [a0, a1, a2, a3] = [anchors.boxes[i * 4]!, anchors.boxes[i * 4 + 1]!, anchors.boxes[i * 4 + 2]!, anchors.boxes[i * 4 + 3]!];
    params[i * 4] = f(f(a0 + a2) / 2);
    params[i * 4 + 1] = f(f(a1 + a3) / 2);
    params[i * 4 + 2] = f(a2 - a0);
    params[i * 4 + 3] = f(a3 - a1);
  }

  return (info) => {
    const nodes: OnnxNode[] = [];
    const initializers: OnnxTensor[] = [];
    const P = 'nms/';
    let count = 0;
    const op = (opType: string, inputs: string[], attributes?: OnnxNode['attributes'], outputs = 1): string[] => {
      const name = `${P}${opType.toLowerCase()}_${count++}`;
      const outs = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? name : `${name}:${i}`));
      nodes.push({ opType, name, inputs, outputs: outs, ...(attributes ? { attributes } : {}) });
      return outs;
    };
    const one = (opType: string, inputs: string[], attributes?: OnnxNode['attributes']) => op(opType, inputs, attributes)[0]!;
    const constant = (name: string, dataType: OnnxDataType, dims: number[], raw: ArrayBufferView): string => {
      initializers.push({ name: `${P}${name}`, dataType, dims, raw: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) });
      return `${P}${name}`;
    };
    const ints = (name: string, values: number[], dims = [values.length]) => constant(name, INT64, dims, BigInt64Array.from(values.map(BigInt)));
    const floats = (name: string, values: number[], dims = [values.length]) => constant(name, FLOAT, dims, Float32Array.from(values));

    const levels = Array.from({ length: m.maxLevel - m.minLevel + 1 }, (_, i) => m.minLevel + i);
    for (const o of levels.flatMap((l) => [`class_P${l}`, `box_P${l}`]))
      if (!info.outputs.some((x) => x.name === o)) throw new InvalidSpecError('detector outputs', info.outputs.map((x) => x.name), `the raw head outputs class_P${m.minLevel}.. and box_P${m.minLevel}..`);
    const flat = ints('shape_flat', [0, -1]);
    const flat4 = ints('shape_flat4', [0, -1, 4]);
    // NCHW -> NHWC -> per image: (y, x, anchor, class) flattened, levels one after another: effdet's order.
    const logits = one('Concat', levels.map((l) => one('Reshape', [one('Transpose', [`class_P${l}`], { perm: [0, 2, 3, 1] }), flat])), { axis: 1 });
    const codesAll = one('Concat', levels.map((l) => one('Reshape', [one('Transpose', [`box_P${l}`], { perm: [0, 2, 3, 1] }), flat4])), { axis: 1 });
    const [topLogits, topIndex] = op('TopK', [logits, ints('k_candidates', [candidates])], { axis: 1, largest: 1, sorted: 1 }, 2) as [string, string];
    const numClasses = ints('num_classes', [C], []);
    const anchorIndex = one('Div', [topIndex, numClasses]);
    const classIndex = one('Mod', [topIndex, numClasses]);
    const axis2 = ints('axis2', [2]);
    const four = ints('expand4', [1, 1, 4]);
    const codes = one('GatherElements', [codesAll, one('Expand', [one('Unsqueeze', [anchorIndex, axis2]), four])], { axis: 1 });
    const anchor = one('Gather', [constant('anchor_params', FLOAT, [anchors.count, 4], params), anchorIndex], { axis: 0 });
    const [zero, two, four4] = [ints('i0', [0]), ints('i2', [2]), ints('i4', [4])];
    const slice = (x: string, from: string, to: string) => one('Slice', [x, from, to, axis2]);
    // decode_box_outputs: centre = t * size_a + centre_a, size = exp(t) * size_a, corners = centre -/+ size / 2.
    const centre = one('Add', [one('Mul', [slice(codes, zero, two), slice(anchor, two, four4)]), slice(anchor, zero, two)]);
    const half = one('Div', [one('Mul', [one('Exp', [slice(codes, two, four4)]), slice(anchor, two, four4)]), floats('two', [2], [])]);
    const yxyx = one('Concat', [one('Sub', [centre, half]), one('Add', [centre, half])], { axis: 2 });
    const xyxy = one('Gather', [yxyx, ints('yx_to_xy', [1, 0, 3, 2])], { axis: 2 });
    const scores = one('Sigmoid', [topLogits]);
    // Class-aware NMS: candidate i scores in row classIndex[i] only.
    const axis1 = ints('axis1', [1]);
    const rows = one('Equal', [one('Unsqueeze', [classIndex, axis1]), ints('class_range', Array.from({ length: C }, (_, c) => c), [1, C, 1])]);
    const minusOne = floats('minus_one', [-1], []);
    const perClass = one('Where', [rows, one('Unsqueeze', [scores, axis1]), minusOne]);
    const selected = one('NonMaxSuppression', [yxyx, perClass, ints('max_per_class', [K]), floats('iou', [iouThreshold]), floats('score', [scoreThreshold])], { center_point_box: 0 });
    // Mark the kept candidates (batch, candidate) and rank them by score.
    const where = one('Gather', [selected, ints('cols_batch_box', [0, 2])], { axis: 1 });
    const ones = one('Expand', [floats('one', [1]), one('Slice', [one('Shape', [selected]), zero, ints('i1', [1])])]);
    const kept = one('ScatterND', [one('ConstantOfShape', [one('Shape', [scores])]), where, ones]);
    const ranked = one('Where', [one('Greater', [kept, floats('half', [0.5], [])]), scores, minusOne]);
    const [bestScores, best] = op('TopK', [ranked, ints('k_detections', [K])], { axis: 1, largest: 1, sorted: 1 }, 2) as [string, string];
    const valid = one('Greater', [bestScores, floats('minus_half', [-0.5], [])]);
    nodes.push(
      { opType: 'Where', name: `${P}out_scores`, inputs: [valid, bestScores, floats('zero', [0], [])], outputs: ['scores'] },
      {
        opType: 'Where',
        name: `${P}out_classes`,
        inputs: [valid, one('Add', [one('GatherElements', [classIndex, best], { axis: 1 }), ints('one_i', [1], [])]), ints('zero_i', [0], [])],
        outputs: ['classes'],
      },
      {
        opType: 'Where',
        name: `${P}out_boxes`,
        inputs: [one('Unsqueeze', [valid, axis2]), one('GatherElements', [xyxy, one('Expand', [one('Unsqueeze', [best, axis2]), four])], { axis: 1 }), floats('zero_box', [0], [])],
        outputs: ['boxes'],
      },
      { opType: 'ReduceSum', name: `${P}out_count`, inputs: [one('Cast', [valid], { to: INT64 }), axis1], outputs: ['num_detections'], attributes: { keepdims: 0 } },
    );
    const outputs: OnnxValueInfo[] = [
      { name: 'boxes', elemType: FLOAT, shape: ['batch', K, 4], docString: 'x1, y1, x2, y2 in the input image pixels (not clipped); zero rows after num_detections' },
      { name: 'scores', elemType: FLOAT, shape: ['batch', K], docString: 'sigmoid scores, best first; 0 after num_detections' },
      { name: 'classes', elemType: INT64, shape: ['batch', K], docString: '1-based class ids (effdet numbering); 0 after num_detections' },
      { name: 'num_detections', elemType: INT64, shape: ['batch'], docString: 'detections per image' },
    ];
    return {
      nodes,
      initializers,
      outputs,
      metadata: {
        'effnet.postprocess': 'effdet: top-k, box decoding, class-aware NMS',
        'effnet.nms.score_threshold': String(scoreThreshold),
        'effnet.nms.iou_threshold': String(iouThreshold),
        'effnet.nms.max_detections': String(K),
        'effnet.nms.max_detection_points': String(candidates),
      },
      docString: `Post-processing in the graph: top ${candidates} candidates, decoding against ${anchors.count} anchors, class-aware NonMaxSuppression (IoU ${iouThreshold}, scores above ${scoreThreshold}), at most ${K} detections: boxes [N, ${K}, 4] (x1, y1, x2, y2, input pixels), scores [N, ${K}], classes [N, ${K}] (int64, 1-based), num_detections [N] (int64)`,
    };
  };
}
