"""effdet's anchors, box coder, post-processing and anchor labeler on seeded random inputs: the reference for
effnet's packages/tasks/src/detection (anchors.ts, box-coder.ts, postprocess.ts, anchor-labeler.ts).

Usage (the peer test runs it; effdet comes from ../shared/peers, torch and torchvision are Debian's):

    eval "$(../shared/peers/setup.sh)"
    PYTHONPATH=$EFFNET_PEERS_PYTHONPATH /usr/bin/python3 scripts/effdet_detection_reference.py spec.json OUTDIR

spec.json: {"anchors": [AnchorOptions...], "coder": {"seed", "n"}, "postprocess": [{"imageSize", "numClasses",
"batch", "softNms", "maxDetectionPoints", "imgScale", "imgSize", "seed"}...], "labeler": [{"imageSize", "numClasses",
"numBoxes", "unmatchedThreshold", "seed"}...], "nms": [{"boxes", "scores", "classes"}...]} (AnchorOptions as in anchors.ts; effdet's other anchor defaults).
Writes .npy files into OUTDIR:
  anchors_I.npy                       Anchors(...).boxes, float32 [N, 4] yxyx
  coder_{anchors,codes,decoded}.npy   decode_box_outputs(codes, anchors, output_xyxy=True)
  coder_{boxes,encoded}.npy           FasterRcnnBoxCoder().encode(BoxList(boxes), BoxList(anchors))
  pp_I_{class,box}_L.npy              random head outputs per level (logits distinct, so that top-k and NMS order
                                      are unambiguous)
  pp_I_topk.npy                       _post_process's top-k (anchor * C + class), int32 [N, K]
  pp_I_det.npy                        _batch_detection's detections, float32 [N, 100, 6] (zero rows padded)
  lab_I_{boxes,classes}.npy           gt boxes (yxyx) and classes (1-based, effdet's input)
  lab_I_{cls,box}_L.npy, lab_I_npos.npy, lab_I_match.npy   AnchorLabeler.label_anchors outputs and match results
  nms.json                            per "nms" case {boxes (xyxy, flat), scores, classes}: torchvision's
                                      batched_nms(..., 0.5) and effdet's batched_soft_nms (Gaussian) on them
"""
import json
import os
import sys

import numpy as np
import torch

from effdet.anchors import Anchors, AnchorLabeler, decode_box_outputs
from effdet.bench import _post_process, _batch_detection
from effdet.soft_nms import batched_soft_nms
from torchvision.ops.boxes import batched_nms
from effdet.object_detection import ArgMaxMatcher, BoxList, FasterRcnnBoxCoder, IouSimilarity, TargetAssigner

DEFAULTS = dict(minLevel=3, maxLevel=7, numScales=3, aspectRatios=[[1.0, 1.0], [1.4, 0.7], [0.7, 1.4]], anchorScale=4.0)


def anchors_for(opts):
    o = {**DEFAULTS, **opts}
    size = o['imageSize']
    size = (size, size) if isinstance(size, int) else tuple(size)
    ratios = [tuple(r) if isinstance(r, list) else r for r in o['aspectRatios']]
    scale = o['anchorScale']
    return Anchors(o['minLevel'], o['maxLevel'], o['numScales'], ratios, scale, size)


def save(out, name, arr):
    np.save(os.path.join(out, name + '.npy'), np.ascontiguousarray(arr))


def postprocess_case(out, i, case):
    g = torch.Generator().manual_seed(case['seed'])
    anchors = anchors_for({'imageSize': case['imageSize']})
    C = case['numClasses']
    N = case['batch']
    A = anchors.get_anchors_per_location()
    levels = range(anchors.min_level, anchors.max_level + 1)
    total = sum(anchors.feat_sizes[l][0] * anchors.feat_sizes[l][1] for l in levels) * A * C
    cls_out, box_out = [], []
    # Distinct logits in [-4, 4]: a random permutation of evenly spaced values, per image.
    perms = [torch.randperm(total, generator=g).float() / total * 8 - 4 for _ in range(N)]
    start = 0
    for l in levels:
        h, w = anchors.feat_sizes[l]
        n = h * w * A * C
        c = torch.stack([p[start:start + n].reshape(A * C, h, w) for p in perms])
        start += n
        b = torch.randn((N, A * 4, h, w), generator=g) * 0.5
        cls_out.append(c)
        box_out.append(b)
        save(out, f'pp_{i}_class_{l - anchors.min_level}', c.numpy())
        save(out, f'pp_{i}_box_{l - anchors.min_level}', b.numpy())
    k = case.get('maxDetectionPoints', 5000)
    cls_topk, box_topk, indices, classes = _post_process(cls_out, box_out, len(levels), C, max_detection_points=k)
    save(out, f'pp_{i}_topk', (indices * C + classes).int().numpy())
    img_scale = img_size = None
    if case.get('imgScale') is not None:
        img_scale = torch.tensor(case['imgScale'], dtype=torch.float32)
        img_size = torch.tensor(case['imgSize'], dtype=torch.int32)
    det = _batch_detection(N, cls_topk, box_topk, anchors.boxes, indices, classes, img_scale, img_size,
                           max_det_per_image=100, soft_nms=case['softNms'])
    save(out, f'pp_{i}_det', det.numpy())


def labeler_case(out, i, case):
    g = torch.Generator().manual_seed(case['seed'])
    anchors = anchors_for({'imageSize': case['imageSize']})
    H, W = anchors.image_size
    n = case['numBoxes']
    # Boxes of every size (some smaller than any anchor, so only the forced match picks them), some duplicated.
    sizes = torch.exp(torch.rand((n, 2), generator=g) * np.log(max(H, W) / 4)) * 4
    cy = torch.rand(n, generator=g) * H
    cx = torch.rand(n, generator=g) * W
    boxes = torch.stack([cy - sizes[:, 0] / 2, cx - sizes[:, 1] / 2, cy + sizes[:, 0] / 2, cx + sizes[:, 1] / 2], 1)
    boxes = torch.round(boxes.clamp(min=0) * 4) / 4
    boxes[:, 2] = torch.maximum(boxes[:, 2].clamp(max=H), boxes[:, 0] + 1)
    boxes[:, 3] = torch.maximum(boxes[:, 3].clamp(max=W), boxes[:, 1] + 1)
    if n >= 3:
        boxes[n - 1] = boxes[0]
    classes = torch.randint(1, case['numClasses'] + 1, (n,), generator=g)
    labeler = AnchorLabeler(anchors, case['numClasses'], match_threshold=0.5)
    unmatched = case.get('unmatchedThreshold', 0.5)
    if unmatched != 0.5:
        matcher = ArgMaxMatcher(0.5, unmatched_threshold=unmatched, negatives_lower_than_unmatched=True, force_match_for_each_row=True)
        labeler.target_assigner = TargetAssigner(IouSimilarity(), matcher, FasterRcnnBoxCoder())
    cls_t, box_t, npos = labeler.label_anchors(boxes, classes)
    _, _, match = labeler.target_assigner.assign(BoxList(anchors.boxes), BoxList(boxes), classes)
    save(out, f'lab_{i}_boxes', boxes.float().numpy())
    save(out, f'lab_{i}_classes', classes.int().numpy())
    for l, (c, b) in enumerate(zip(cls_t, box_t)):
        save(out, f'lab_{i}_cls_{l}', c.int().numpy())
        save(out, f'lab_{i}_box_{l}', b.float().numpy())
    save(out, f'lab_{i}_npos', np.array([float(npos)], dtype=np.float32))
    save(out, f'lab_{i}_match', match.match_results.int().numpy())


def main():
    torch.set_num_threads(1)
    spec = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for i, opts in enumerate(spec.get('anchors', [])):
        save(out, f'anchors_{i}', anchors_for(opts).boxes.numpy())
    if 'coder' in spec:
        g = torch.Generator().manual_seed(spec['coder']['seed'])
        n = spec['coder']['n']
        pool = anchors_for({'imageSize': 512}).boxes
        anchors = pool[torch.randint(0, pool.shape[0], (n,), generator=g)]
        codes = torch.randn((n, 4), generator=g)
        save(out, 'coder_anchors', anchors.numpy())
        save(out, 'coder_codes', codes.numpy())
        save(out, 'coder_decoded', decode_box_outputs(codes, anchors, output_xyxy=True).numpy())
        boxes = decode_box_outputs(torch.randn((n, 4), generator=g) * 0.3, anchors)
        save(out, 'coder_boxes', boxes.numpy())
        save(out, 'coder_encoded', FasterRcnnBoxCoder().encode(BoxList(boxes), BoxList(anchors)).numpy())
    for i, case in enumerate(spec.get('postprocess', [])):
        postprocess_case(out, i, case)
    for i, case in enumerate(spec.get('labeler', [])):
        labeler_case(out, i, case)
    nms_out = []
    for case in spec.get('nms', []):
        boxes = torch.tensor(case['boxes'], dtype=torch.float32).reshape(-1, 4)
        scores = torch.tensor(case['scores'], dtype=torch.float32)
        classes = torch.tensor(case['classes'], dtype=torch.int64)
        keep = batched_nms(boxes, scores, classes, 0.5)
        soft_idx, soft_scores = batched_soft_nms(boxes, scores, classes, method_gaussian=True, iou_threshold=0.3, score_threshold=.001)
        nms_out.append({'nms': keep.tolist(), 'softIndices': soft_idx.tolist(), 'softScores': soft_scores.tolist()})
    with open(os.path.join(out, 'nms.json'), 'w') as f:
        json.dump(nms_out, f)


if __name__ == '__main__':
    main()
