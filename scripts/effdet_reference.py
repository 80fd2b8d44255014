#!/usr/bin/python3
"""effdet (rwightman/efficientdet-pytorch) reference data for the EfficientDet tests.

Run with Debian's PyTorch and the source peers on the path (testing/peers.ts does this):
  PYTHONPATH=$EFFNET_PEERS_PYTHONPATH /usr/bin/python3 scripts/effdet_reference.py ...

Three modes:

  names --models tf_efficientdet_d0,efficientdet_d0:3,... [--num-classes 90]
      Prints one JSON object: {entry: {"params": sum of parameter numels, "state": {name: shape}}} for effdet's own
      architecture (create_model, pretrained=False, pretrained_backbone=False: nothing is downloaded).
      num_batches_tracked buffers are left out (no graph reads them). `name:N` builds that model with N classes.

  fixture --model tf_efficientdet_d0 --out DIR [--image-size 512 | 256,320] [--batch 2] [--seed 0]
          [--num-classes 90] [--fpn-name bifpn_attn]
      Writes into DIR (each file atomically):
        weights.safetensors  effdet's state_dict, F32 (num_batches_tracked as I64)
        input.npy            float32 [batch, 3, H, W], N(0, 1)
        class_P<l>.npy, box_P<l>.npy   effdet's raw outputs (EfficientDet.forward: class and box lists per level),
                             computed in float64 and saved as float32
        meta.json            model, image size, batch, seed, versions; per output: max |value|, input sensitivity
                             (max |y[0] - y[1]| / max |y|) and float32_error (effdet's own float32 forward against
                             its float64 one, max |diff| / max |y|)
      Random but non-trivial weights: effdet's init after torch.manual_seed(seed); then, visiting modules in order
      with a seeded generator, BatchNorm weight ~ U(0.5, 1.5) and bias ~ N(0, 0.1), every conv bias += N(0, 0.05),
      BiFPN edge weights ~ U(-0.3, 1.5) (so fast fusion's relu and normalisation both matter); BatchNorm running
      statistics are then calibrated on a separate seeded batch and perturbed (torchvision_reference.calibrate_bn_),
      which keeps the outputs input-dependent. --fpn-name overrides the config's fusion (bifpn_fa, bifpn_attn,
      bifpn_sum) to cover every fusion method on a small model.

  loss --model tf_efficientdet_lite0 --out DIR [--image-size 128] [--batch 2] [--num-classes 3]
      effdet's training loss on one batch (train-mode forward, drop path off, AnchorLabeler targets for random boxes,
      DetectionLoss): weights.safetensors, input.npy and meta.json with the boxes (effnet's xyxy, 0-based classes),
      the positives per image and the total, class and box losses.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_reference import (  # noqa: E402
    CALIB_INPUT_SEED_OFFSET,
    INPUT_SEED_OFFSET,
    _save_npy_atomic,
    _write_bytes_atomic,
    calibrate_bn_,
    perturb_affine_,
    write_safetensors,
)

from effdet import create_model, create_model_from_config, get_efficientdet_config  # noqa: E402


def build(name, num_classes, image_size=None, fpn_name=None):
    config = get_efficientdet_config(name)
    if image_size is not None:
        config.image_size = tuple(image_size)
    if fpn_name is not None:
        config.fpn_name = fpn_name
    return create_model_from_config(config, pretrained=False, pretrained_backbone=False, num_classes=num_classes)


def skip_random_init():
    """Names, shapes and counts do not depend on values: skip weight init (d7x builds in 0.4 s instead of 3 s)."""
    keep = lambda t, *a, **k: t  # noqa: E731
    for f in ("normal_", "uniform_", "zero_", "fill_"):
        setattr(torch.Tensor, f, keep)
    for f in ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "trunc_normal_", "zeros_", "ones_",
              "xavier_uniform_", "constant_"):
        setattr(torch.nn.init, f, keep)


def names(args):
    skip_random_init()
    out = {}
    for entry in args.models.split(","):
        name, _, classes = entry.partition(":")
        m = create_model(name, pretrained=False, pretrained_backbone=False, num_classes=int(classes or args.num_classes))
        state = {k: list(v.shape) for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
        out[entry] = {"params": int(sum(p.numel() for p in m.parameters())), "state": state}
    print(json.dumps(out))


def fixture(args):
    torch.set_num_threads(args.threads)
    size = [int(v) for v in args.image_size.split(",")] if args.image_size else None
    if size is not None and len(size) == 1:
        size = size * 2
    torch.manual_seed(args.seed)
    model = build(args.model, args.num_classes, size, args.fpn_name)
    h, w = model.config.image_size
    perturb_affine_(model, args.seed)
    gc = torch.Generator().manual_seed(args.seed + CALIB_INPUT_SEED_OFFSET)
    calibrate_bn_(model, torch.randn(max(args.batch, 2), 3, h, w, generator=gc), args.seed)
    model.eval()
    gi = torch.Generator().manual_seed(args.seed + INPUT_SEED_OFFSET)
    x = torch.randn(args.batch, 3, h, w, generator=gi)
    # The reference is effdet's forward in float64 (same modules and weights, saved as float32): the tests then measure
    # effnet's float32 error alone, not the sum of two float32 errors. effdet's own float32 forward is kept as a
    # measure of how far float32 arithmetic alone moves these outputs (meta: float32_error).
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "weights.safetensors"), model.state_dict())
    with torch.no_grad():
        classes32, boxes32 = model(x)
        model.double()
        classes, boxes = model(x.double())
    levels = list(range(model.config.min_level, model.config.max_level + 1))
    meta = {
        "model": args.model,
        "image_size": [h, w],
        "batch": args.batch,
        "seed": args.seed,
        "num_classes": args.num_classes,
        "fpn_name": model.config.fpn_name,
        "levels": levels,
        "torch_version": torch.__version__,
        "outputs": {},
    }
    for kind, outs, outs32 in (("class", classes, classes32), ("box", boxes, boxes32)):
        for level, t, t32 in zip(levels, outs, outs32):
            a = t.numpy()
            name = f"{kind}_P{level}"
            _save_npy_atomic(os.path.join(args.out, f"{name}.npy"), a.astype(np.float32))
            scale = float(np.abs(a).max())
            sens = float(np.abs(a[0] - a[1:]).max()) / scale if args.batch > 1 and scale > 0 else None
            f32 = float(np.abs(t32.numpy().astype(np.float64) - a).max()) / scale if scale > 0 else 0.0
            meta["outputs"][name] = {"shape": list(a.shape), "max_abs": scale, "input_sensitivity": sens, "float32_error": f32}
    _save_npy_atomic(os.path.join(args.out, "input.npy"), x.numpy())
    _write_bytes_atomic(os.path.join(args.out, "meta.json"), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    print(json.dumps(meta, separators=(",", ":")))


def loss(args):
    """effdet's training loss on one batch: train-mode forward (batch statistics, no drop path), AnchorLabeler
    targets for random boxes, DetectionLoss. Writes the weights, the input, the boxes and the three loss values."""
    from effdet.anchors import Anchors, AnchorLabeler
    from effdet.loss import DetectionLoss

    torch.set_num_threads(args.threads)
    size = [int(v) for v in args.image_size.split(",")] if args.image_size else None
    if size is not None and len(size) == 1:
        size = size * 2
    torch.manual_seed(args.seed)
    config = get_efficientdet_config(args.model)
    if size is not None:
        config.image_size = tuple(size)
    config.backbone_args = dict(drop_path_rate=0.0)
    model = create_model_from_config(config, pretrained=False, pretrained_backbone=False, num_classes=args.num_classes)
    h, w = model.config.image_size
    perturb_affine_(model, args.seed)
    gc = torch.Generator().manual_seed(args.seed + CALIB_INPUT_SEED_OFFSET)
    calibrate_bn_(model, torch.randn(max(args.batch, 2), 3, h, w, generator=gc), args.seed)
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "weights.safetensors"), model.state_dict())
    gi = torch.Generator().manual_seed(args.seed + INPUT_SEED_OFFSET)
    x = torch.randn(args.batch, 3, h, w, generator=gi)
    anchors = Anchors.from_config(model.config)
    labeler = AnchorLabeler(anchors, args.num_classes, match_threshold=0.5)
    g = torch.Generator().manual_seed(args.seed + 7)
    boxes_out, cls_levels, box_levels, npos = [], None, None, []
    per_image = []
    for i in range(args.batch):
        n = 1 + int(torch.randint(0, 5, (1,), generator=g))
        sizes = 8 + torch.rand(n, 2, generator=g) * (min(h, w) * 0.6)
        cy = torch.rand(n, generator=g) * h
        cx = torch.rand(n, generator=g) * w
        yxyx = torch.stack([cy - sizes[:, 0] / 2, cx - sizes[:, 1] / 2, cy + sizes[:, 0] / 2, cx + sizes[:, 1] / 2], 1)
        yxyx[:, 0::2] = yxyx[:, 0::2].clamp(0, h)
        yxyx[:, 1::2] = yxyx[:, 1::2].clamp(0, w)
        yxyx = torch.round(yxyx * 4) / 4
        classes = torch.randint(1, args.num_classes + 1, (n,), generator=g)
        cls_t, box_t, num_pos = labeler.label_anchors(yxyx, classes)
        per_image.append((cls_t, box_t))
        npos.append(float(num_pos))
        # effnet's boxes are [x1, y1, x2, y2] and its classes 0-based.
        boxes_out.append({"boxes": yxyx[:, [1, 0, 3, 2]].tolist(), "classes": (classes - 1).tolist()})
    levels = len(per_image[0][0])
    cls_targets = [torch.stack([p[0][l] for p in per_image]) for l in range(levels)]
    box_targets = [torch.stack([p[1][l] for p in per_image]) for l in range(levels)]
    model.train()
    class_out, box_out = model(x)
    total, cls_loss, box_loss = DetectionLoss(model.config)(class_out, box_out, cls_targets, box_targets, torch.tensor(npos))
    _save_npy_atomic(os.path.join(args.out, "input.npy"), x.numpy())
    meta = {"model": args.model, "image_size": [h, w], "batch": args.batch, "num_classes": args.num_classes, "images": boxes_out,
            "num_positives": npos, "loss": float(total), "class_loss": float(cls_loss), "box_loss": float(box_loss),
            "alpha": model.config.alpha, "gamma": model.config.gamma, "delta": model.config.delta, "box_loss_weight": model.config.box_loss_weight}
    _write_bytes_atomic(os.path.join(args.out, "meta.json"), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))


def main(argv=None):
    ap = argparse.ArgumentParser(description="effdet reference data")
    sub = ap.add_subparsers(dest="mode", required=True)
    n = sub.add_parser("names")
    n.add_argument("--models", required=True)
    n.add_argument("--num-classes", type=int, default=90)
    f = sub.add_parser("fixture")
    f.add_argument("--model", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--image-size", default=None, help="H or H,W (default: the config's)")
    f.add_argument("--batch", type=int, default=2)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--num-classes", type=int, default=90)
    f.add_argument("--fpn-name", default=None, help="bifpn_fa, bifpn_attn or bifpn_sum (default: the config's)")
    f.add_argument("--threads", type=int, default=2)
    lo = sub.add_parser("loss")
    lo.add_argument("--model", required=True)
    lo.add_argument("--out", required=True)
    lo.add_argument("--image-size", default=None)
    lo.add_argument("--batch", type=int, default=2)
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--num-classes", type=int, default=3)
    lo.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    {"names": names, "fixture": fixture, "loss": loss}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
