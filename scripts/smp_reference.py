#!/usr/bin/python3
"""segmentation_models_pytorch (smp) reference data for the segmentation tests.

Run with Debian's PyTorch and the source peers on the path (testing/peers.ts does this):
  PYTHONPATH=$EFFNET_PEERS_PYTHONPATH /usr/bin/python3 scripts/smp_reference.py ...

Models are effnet's names: unet_efficientnet_b0 = smp.Unet("timm-efficientnet-b0"), fpn_* = smp.FPN,
deeplabv3plus_* = smp.DeepLabV3Plus (smp's defaults: encoder output stride 16, logits at the input size). The encoder
is the timm-efficientnet-bN one (symmetric padding, BN eps 1e-5), built without downloading anything.

bifpnseg_<detector> is automl's EfficientDet segmentation head (efficientdet_keras.py SegmentationHead) transcribed
to PyTorch on effdet's own backbone and BiFPN (effdet.create_model): per level from the deepest, ConvTranspose2d(3,
stride 2, no bias) cropped to TF's 'same' (the last row and column of the full output dropped), BatchNorm (the
detector's eps/momentum), the detector's activation, concat with the next level; then ConvTranspose2d to the classes
('same' again) and, as effnet's segmenters do, a bilinear resize (align_corners=False) to the input size. automl is
TensorFlow and not a peer here: the head is this transcription; backbone and BiFPN are effdet's.

Modes:

  names --models unet_efficientnet_b0:3,fpn_efficientnet_b0:3,...
      Prints one JSON object {entry: {"params": sum of parameter numels, "state": {name: shape}}} (num_batches_tracked
      left out). `name:N` builds the model with N classes.

  fixture --model unet_efficientnet_b0 --out DIR [--size 128] [--batch 2] [--classes 3] [--seed 0]
      Writes into DIR (each file atomically): weights.safetensors (smp's state_dict, F32; num_batches_tracked I64),
      input.npy float32 [batch, 3, size, size] N(0, 1), logits.npy (smp's forward in float64, saved as float32) and
      meta.json (written last) with max |logit|, input sensitivity and smp's own float32 error. Random, non-trivial
      weights: smp's init after torch.manual_seed(seed); then BatchNorm and GroupNorm weight ~ U(0.5, 1.5), bias ~
      N(0, 0.1), conv biases += N(0, 0.05); BatchNorm running statistics calibrated on the input and perturbed (torchvision_reference.calibrate_bn_ with a
      variance floor of 10% of each layer's mean).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_reference import (  # noqa: E402
    INPUT_SEED_OFFSET,
    _save_npy_atomic,
    calibrate_bn_,
    perturb_affine_,
    _write_bytes_atomic,
    write_safetensors,
)

import segmentation_models_pytorch as smp  # noqa: E402

ARCHS = {"unet": "Unet", "fpn": "FPN", "deeplabv3plus": "DeepLabV3Plus"}


class AutomlSegHead(torch.nn.Module):
    """automl's SegmentationHead in PyTorch (see the module doc)."""

    def __init__(self, channels, classes, levels, act, eps, momentum):
        super().__init__()
        c = channels
        self.con2d_ts = torch.nn.ModuleList(
            [torch.nn.ConvTranspose2d(c if i == 0 else 2 * c, c, 3, stride=2, bias=False) for i in range(levels)])
        self.con2d_t_bns = torch.nn.ModuleList([torch.nn.BatchNorm2d(c, eps=eps, momentum=momentum) for _ in range(levels)])
        self.head_transpose = torch.nn.ConvTranspose2d(2 * c, classes, 3, stride=2, bias=True)
        self.act = act

    def forward(self, feats):
        same = lambda y: y[:, :, :-1, :-1]  # noqa: E731  TF 'same' for k=3, s=2: pads (0, 1) at each side's end
        x = feats[-1]
        for t, bn, skip in zip(self.con2d_ts, self.con2d_t_bns, list(reversed(feats[:-1]))):
            x = torch.cat([self.act(bn(same(t(x)))), skip], 1)
        return same(self.head_transpose(x))


class BifpnSeg(torch.nn.Module):
    def __init__(self, detector, classes, size):
        super().__init__()
        from effdet import create_model_from_config, get_efficientdet_config
        from effdet.efficientdet import get_act_layer
        config = get_efficientdet_config(detector)
        config.image_size = (size, size)  # effdet sizes the BiFPN's resampling from the config
        d = create_model_from_config(config, pretrained=False, pretrained_backbone=False, num_classes=1)
        cfg = d.config
        self.backbone = d.backbone
        self.fpn = d.fpn
        self.seg_head = AutomlSegHead(cfg.fpn_channels, classes, cfg.max_level - cfg.min_level,
                                      get_act_layer(cfg.act_type)(), 1e-3, 0.01)

    def forward(self, x):
        feats = self.fpn(self.backbone(x))
        y = self.seg_head(feats)
        return torch.nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build(name, classes, size=512):
    """effnet's segmenter name -> smp's model with the timm-efficientnet encoder (or bifpnseg_<detector>)."""
    decoder, _, encoder = name.partition("_")
    if decoder == "bifpnseg":
        return BifpnSeg(encoder.replace("-", ""), classes, size)
    if decoder not in ARCHS or not encoder.startswith("efficientnet_b"):
        raise SystemExit(f"{name}: expected <unet|fpn|deeplabv3plus>_efficientnet_bN")
    return getattr(smp, ARCHS[decoder])("timm-efficientnet-" + encoder[len("efficientnet_"):], encoder_weights=None, classes=classes)


def names(args):
    out = {}
    for entry in args.models.split(","):
        name, _, classes = entry.partition(":")
        m = build(name, int(classes or 1))
        state = {k: list(v.shape) for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
        out[entry] = {"params": int(sum(p.numel() for p in m.parameters())), "state": state}
    print(json.dumps(out))


def fixture(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build(args.model, args.classes, args.size)
    # BiFPN fusion weights away from 0 (bifpnseg): a sum near 0 amplifies float32 rounding.
    perturb_affine_(model, args.seed, edge_weights=(0.2, 1.5))
    s = args.size
    gi = torch.Generator().manual_seed(args.seed + INPUT_SEED_OFFSET)
    x = torch.randn(args.batch, 3, s, s, generator=gi)
    # Calibrated on the input itself: at 64 px the deep maps are 2x2, and statistics from another batch would not
    # fit this one (activations in the thousands, where float32 rounding alone exceeds the tolerance).
    calibrate_bn_(model, x, args.seed, var_floor=0.1)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "weights.safetensors"), model.state_dict())
    with torch.no_grad():
        y32 = model(x)
        model.double()
        y = model(x.double()).numpy()
    scale = float(np.abs(y).max())
    meta = {
        "model": args.model,
        "size": s,
        "batch": args.batch,
        "classes": args.classes,
        "seed": args.seed,
        "torch_version": torch.__version__,
        "shape": list(y.shape),
        "max_abs": scale,
        "input_sensitivity": float(np.abs(y[0] - y[1:]).max()) / scale if args.batch > 1 and scale > 0 else None,
        "float32_error": float(np.abs(y32.numpy().astype(np.float64) - y).max()) / scale if scale > 0 else 0.0,
    }
    _save_npy_atomic(os.path.join(args.out, "input.npy"), x.numpy())
    _save_npy_atomic(os.path.join(args.out, "logits.npy"), y.astype(np.float32))
    _write_bytes_atomic(os.path.join(args.out, "meta.json"), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    print(json.dumps(meta, separators=(",", ":")))


def main(argv=None):
    ap = argparse.ArgumentParser(description="smp reference data")
    sub = ap.add_subparsers(dest="mode", required=True)
    n = sub.add_parser("names")
    n.add_argument("--models", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("--model", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--size", type=int, default=128)
    f.add_argument("--batch", type=int, default=2)
    f.add_argument("--classes", type=int, default=3)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    {"names": names, "fixture": fixture}[args.mode](args)


if __name__ == "__main__":
    main()
