#!/usr/bin/python3
"""effdet's whole evaluation path on image files: the reference for effnet's Detector (packages/tasks/src/detection).

Usage (the peer test runs it; effdet comes from ../shared/peers, torch is Debian's):
  PYTHONPATH=$EFFNET_PEERS_PYTHONPATH /usr/bin/python3 scripts/effdet_detect_reference.py \
      --model tf_efficientdet_lite0 --weights FIXTURE/weights.safetensors --out DIR [--soft-nms] IMAGE...

As effdet's validate.py runs it, with nothing downloaded: the model (create_model_from_config, the fixture's
state_dict), its input config (resolve_input_config: size, bicubic, mean/std, fill 'mean'), each image opened with
PIL and converted to RGB, transforms_coco_eval (ResizePad letterbox, ImageToNumpy), PrefetchLoader's normalisation
((x - 255 mean) / (255 std) in float32), and DetBenchPredict with img_info (img_scale = 1 / resize factor, img_size =
original (width, height)). Writes into DIR:
  input.npy        float32 [N, 3, H, W], the normalised batch
  detections.npy   float32 [N, max_det_per_image, 6] rows x1, y1, x2, y2, score, class (zero rows padded)
  meta.json        model, input config, img_scale and img_size per image, torch version (written last)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from effdet_reference import build  # noqa: E402
from torchvision_reference import _save_npy_atomic, _write_bytes_atomic, read_safetensors  # noqa: E402

from effdet.bench import DetBenchPredict  # noqa: E402
from effdet.data.input_config import resolve_input_config  # noqa: E402
from effdet.data.transforms import transforms_coco_eval  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--num-classes", type=int, default=90)
    ap.add_argument("--soft-nms", action="store_true")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model = build(args.model, args.num_classes)
    model.load_state_dict(read_safetensors(args.weights), strict=True)
    model.eval()
    cfg = resolve_input_config({}, model.config)
    transform = transforms_coco_eval(cfg["input_size"][-2:], interpolation=cfg["interpolation"], use_prefetcher=True,
                                     fill_color=cfg["fill_color"], mean=cfg["mean"], std=cfg["std"])
    arrays, scales, sizes = [], [], []
    for path in args.images:
        img = Image.open(path).convert("RGB")
        width, height = img.size
        arr, anno = transform(img, {"img_size": (width, height)})
        arrays.append(torch.from_numpy(arr))
        scales.append(anno["img_scale"])
        sizes.append([width, height])
    mean = torch.tensor([x * 255 for x in cfg["mean"]]).view(1, 3, 1, 1)
    std = torch.tensor([x * 255 for x in cfg["std"]]).view(1, 3, 1, 1)
    x = torch.stack(arrays).float().sub_(mean).div_(std)
    bench = DetBenchPredict(model)
    bench.soft_nms = bool(args.soft_nms)  # the config is read-only; the bench copies the flag
    bench.eval()
    img_info = {"img_scale": torch.tensor(scales, dtype=torch.float32), "img_size": torch.tensor(sizes, dtype=torch.float32)}
    with torch.no_grad():
        det = bench(x, img_info)
    os.makedirs(args.out, exist_ok=True)
    _save_npy_atomic(os.path.join(args.out, "input.npy"), x.numpy())
    _save_npy_atomic(os.path.join(args.out, "detections.npy"), det.numpy().astype(np.float32))
    meta = {"model": args.model, "input_config": {k: v if isinstance(v, str) else [float(e) for e in v] for k, v in cfg.items()},
            "img_scale": scales, "img_size": sizes, "soft_nms": bool(args.soft_nms), "torch_version": torch.__version__}
    _write_bytes_atomic(os.path.join(args.out, "meta.json"), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    print(json.dumps({"out": args.out, "images": len(args.images)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
