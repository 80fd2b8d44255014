"""pycocotools' COCOeval (bbox) on many cases in one run: the reference for effnet's evaluateCoco.

Usage (the peer test runs it; pycocotools comes from ../shared/peers, built by ../shared/peers/setup.sh):

    eval "$(../shared/peers/setup.sh)"
    PYTHONPATH=$EFFNET_PEERS_PYTHONPATH /usr/bin/python3 scripts/coco_eval_reference.py cases.json out.json

cases.json holds {"cases": [{"gt": <COCO annotations object>, "dt": <COCO results list>}, ...]}. For every case,
out.json gets the 12 stats (COCOeval.stats), per-category AP and AP50 as a user reads them from
eval['precision'][:, :, k, 0, 2] and eval['precision'][0, :, k, 0, 2], the recall array [T, K, A, M] and, per IoU
threshold, the 101-point precision averaged over the categories with ground truth (area all, maxDets 100), and the 12
summary lines summarize() prints. pycocotools' other printing is suppressed. An empty results list (which loadRes cannot read) is evaluated with an empty
results object.
"""
import contextlib
import copy
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def mean_valid(s):
    s = np.asarray(s, dtype=np.float64)
    return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))


def evaluate(case):
    gt = COCO()
    gt.dataset = copy.deepcopy(case['gt'])
    gt.createIndex()
    if case['dt']:
        dt = gt.loadRes(copy.deepcopy(case['dt']))
    else:
        dt = COCO()
        dt.dataset = {'images': list(gt.dataset['images']), 'categories': copy.deepcopy(gt.dataset['categories']), 'annotations': []}
        dt.createIndex()
    e = COCOeval(gt, dt, 'bbox')
    e.evaluate()
    e.accumulate()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        e.summarize()
    precision = e.eval['precision']
    per_class = []
    for k, cat_id in enumerate(e.params.catIds):
        per_class.append({
            'categoryId': int(cat_id),
            'AP': mean_valid(precision[:, :, k, 0, 2]),
            'AP50': mean_valid(precision[0, :, k, 0, 2]),
        })
    pr = [[mean_valid(precision[t, r, :, 0, 2]) for r in range(precision.shape[1])] for t in range(precision.shape[0])]
    return {
        'stats': [float(x) for x in e.stats],
        'perClass': per_class,
        'recall': [float(x) for x in e.eval['recall'].reshape(-1)],
        'pr': pr,
        'summary': [l for l in printed.getvalue().splitlines() if l.startswith(' Average')],
    }


def main():
    cases = json.load(open(sys.argv[1]))['cases']
    results = []
    with contextlib.redirect_stdout(io.StringIO()):
        for case in cases:
            results.append(evaluate(case))
        params = COCOeval(iouType='bbox').params
    out = {
        'iouThrs': [float(x) for x in params.iouThrs],
        'recThrs': [float(x) for x in params.recThrs],
        'results': results,
    }
    with open(sys.argv[2], 'w') as f:
        json.dump(out, f)


if __name__ == '__main__':
    main()
