#!/usr/bin/python3
"""effdet's own .pth of an effdet reference fixture: the file its releases are (torch.save(model.state_dict())).

Usage (testing/peers.ts runs it; effdet comes from ../shared/peers, torch is Debian's):
  PYTHONPATH=$EFFNET_PEERS_PYTHONPATH /usr/bin/python3 scripts/effdet_pth.py --model tf_efficientdet_lite0 \
      --weights FIXTURE/weights.safetensors --out DIR [--num-classes 90] [--image-size 320]

Builds effdet's model (create_model_from_config, nothing downloaded), loads the fixture's state_dict into it
(strict), and writes into DIR:
  model.pth     torch.save(model.state_dict()) in the zip format, as effdet's released checkpoints
  meta.json     model, parameter count and torch version (written last)
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from effdet_reference import build  # noqa: E402
from torchvision_reference import _write_bytes_atomic, read_safetensors  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--num-classes", type=int, default=90)
    ap.add_argument("--image-size", default=None)
    args = ap.parse_args(argv)
    size = [int(v) for v in args.image_size.split(",")] if args.image_size else None
    if size is not None and len(size) == 1:
        size = size * 2
    model = build(args.model, args.num_classes, size)
    model.load_state_dict(read_safetensors(args.weights), strict=True)
    os.makedirs(args.out, exist_ok=True)
    tmp = os.path.join(args.out, "model.pth.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, os.path.join(args.out, "model.pth"))
    meta = {"model": args.model, "params": int(sum(p.numel() for p in model.parameters())), "torch_version": torch.__version__}
    _write_bytes_atomic(os.path.join(args.out, "meta.json"), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
