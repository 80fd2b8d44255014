"""timm's pretrained cfgs for registry tags, and timm's parameter counts for architectures (random weights).

Prints one JSON object: {"timm": version, "cfgs": {tag: cfg or null}, "params": {arch: count}}. A cfg holds the
fields the zoo's registry takes from timm (input sizes, crops, interpolation, mean/std, classes, license, hub id);
null where timm has no such tag.

Usage: python3 scripts/timm_cfgs.py --tags efficientnet_b0.ra_in1k,... [--params tf_efficientnet_b8,...]
"""
import argparse
import json

import timm
from timm.models import get_pretrained_cfg

ap = argparse.ArgumentParser()
ap.add_argument("--tags", default="")
ap.add_argument("--params", default="")
args = ap.parse_args()

FIELDS = ("input_size", "test_input_size", "crop_pct", "test_crop_pct", "crop_mode", "interpolation", "mean", "std",
          "num_classes", "license", "hf_hub_id")

cfgs = {}
for tag in filter(None, args.tags.split(",")):
    c = get_pretrained_cfg(tag)
    cfgs[tag] = None if c is None else {k: getattr(c, k, None) for k in FIELDS}

params = {}
for arch in filter(None, args.params.split(",")):
    m = timm.create_model(arch, pretrained=False)
    params[arch] = sum(p.numel() for p in m.parameters())

print(json.dumps({"timm": timm.__version__, "cfgs": cfgs, "params": params}))
