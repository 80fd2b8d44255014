"""timm reference fixtures (where timm is installed; Debian has no timm package, so CI does not run this).

For each model: timm's own architecture with random weights, BatchNorm statistics calibrated on a seeded batch then
perturbed, weights rounded to float16 (so the file is small and the logits are exactly those of the saved weights),
saved as <name>.safetensors (F16, timm's names); logits.npy stacks every model's logits [models, 2, 1000] for the one
shared input (input.npy), in the order of --models. BatchNorm is calibrated as scripts/torchvision_reference.py does
(layer by layer on real activations, then perturbed), which keeps the logits well conditioned.

Usage: python3 scripts/timm_reference.py OUT_DIR [--res 224] [--models tf_efficientnet_b0,...]
"""
import argparse
import json
import os

import sys

import numpy as np
import timm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_reference import calibrate_bn_  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--res", type=int, default=224)
ap.add_argument("--models", default="tf_efficientnet_b0,tf_efficientnet_lite0,tf_efficientnetv2_b0,efficientnet_b0")
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
torch.manual_seed(0)
g = torch.Generator().manual_seed(1)
x = torch.randn(2, 3, args.res, args.res, generator=g)
np.save(os.path.join(args.out, "input.npy"), x.numpy())


def save_f16(path, sd):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        if v.dtype in (torch.int64,):
            arr, dt = v.numpy().astype("<i8"), "I64"
        else:
            arr, dt = v.detach().to(torch.float16).numpy().astype("<f2"), "F16"
        b = arr.tobytes()
        header[k] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


summary = {"timm": timm.__version__, "torch": torch.__version__}
all_logits = []
for name in args.models.split(","):
    m = timm.create_model(name, pretrained=False, num_classes=1000)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5, generator=g)
                mod.bias.normal_(0, 0.1, generator=g)
        calibrate_bn_(m, torch.randn(8, 3, args.res, args.res, generator=g), seed=0)
        m.eval()
        sd = m.state_dict()
        for k, v in sd.items():
            if v.is_floating_point():
                v.copy_(v.to(torch.float16).to(torch.float32))
        logits = m(x)
    save_f16(os.path.join(args.out, f"{name}.safetensors"), sd)
    all_logits.append(logits.numpy())
    summary[name] = {"bn_eps": next(mod.eps for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)), "max_abs_logit": float(logits.abs().max()), "input_sensitivity": float((logits[0] - logits[1]).abs().max() / logits.abs().max())}
print(json.dumps(summary))
np.save(os.path.join(args.out, "logits.npy"), np.stack(all_logits))
