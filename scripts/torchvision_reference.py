#!/usr/bin/python3
"""Produce torchvision EfficientNet reference fixtures for the TypeScript tests.

Usage:
  /usr/bin/python3 scripts/torchvision_reference.py --variant efficientnet_b0 --out DIR
      [--resolution N] [--batch 2] [--seed 0] [--padding symmetric|same]
      [--num-classes 1000] [--export-onnx] [--threads 2] [--bn-stats calibrated|random]

Writes into DIR (every file atomically: *.tmp then os.replace):
  weights.safetensors  state_dict under torchvision's names (F32; num_batches_tracked as I64)
  input.npy            float32 [batch, 3, res, res], N(0, 1)
  logits.npy           float32 [batch, num_classes]
  meta.json            variant, resolution, batch, seed, padding, num_classes, bn_eps, versions,
                       max_abs_logit, ...
  torch.onnx           (only with --export-onnx)

Weights are random but non-trivial: the model is built after torch.manual_seed(seed)
(convs keep torchvision's init), then, with torch.Generator seeded by `seed`, visiting
modules in model.modules() order, each BatchNorm2d gets weight ~ U(0.5, 1.5),
bias ~ N(0, 0.1), running_mean ~ N(0, 0.1), running_var ~ U(0.5, 1.5), and every
Conv2d/Linear bias (the squeeze-excitation convs and the classifier) ~ N(0, 0.05).
The input is drawn from a separate generator seeded by seed + INPUT_SEED_OFFSET.

Caveat: with those running stats the input signal all but vanishes in the trunk (torchvision's
fan_out init makes depthwise convs shrink activations ~C/2-fold and the random running_var
does not renormalize), so logits are ~input-independent. --bn-stats calibrated (the default) fixes that:
stats are measured on a separate seeded batch, then perturbed (see calibrate_bn_).
meta.json's input_sensitivity = max|l[0] - l[1:]| / max|l| shows which regime a fixture is in.

--padding same replaces every Conv2d with non-zero padding by a TensorFlow "SAME"
padding conv (as timm's tf_* models): pad dynamically with F.pad, smaller half first
(left/top = total // 2), then convolve with padding 0. Module names and state_dict keys
are unchanged.

The module can also be imported (build_model, read_safetensors, ...) for checks.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

# torchvision's eval crop size (ImageClassification transforms of the IMAGENET1K weights).
DEFAULT_RESOLUTION = {
    "efficientnet_b0": 224,
    "efficientnet_b1": 240,
    "efficientnet_b2": 288,
    "efficientnet_b3": 300,
    "efficientnet_b4": 380,
    "efficientnet_b5": 456,
    "efficientnet_b6": 528,
    "efficientnet_b7": 600,
    "efficientnet_v2_s": 384,
    "efficientnet_v2_m": 480,
    "efficientnet_v2_l": 480,
}

INPUT_SEED_OFFSET = 1_000_003
CALIB_INPUT_SEED_OFFSET = 2_000_003
CALIB_STATS_SEED_OFFSET = 3_000_017

SAFETENSORS_DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


class TFSamePadConv2d(nn.Conv2d):
    """nn.Conv2d with TensorFlow "SAME" padding computed from the runtime input size.

    Existing nn.Conv2d instances are converted in place by swapping __class__, so the
    parameters, attribute names and state_dict keys stay exactly torchvision's. The
    stored `padding` attribute is left untouched (ignored by forward).
    """

    @staticmethod
    def _same_pad(size, k, s, d):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x):
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        top, bottom = self._same_pad(int(ih), kh, self.stride[0], self.dilation[0])
        left, right = self._same_pad(int(iw), kw, self.stride[1], self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def apply_same_padding(model):
    """Convert every nn.Conv2d with non-zero padding to TFSamePadConv2d; returns count."""
    n = 0
    for m in model.modules():
        if type(m) is nn.Conv2d and any(p != 0 for p in m.padding):
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ValueError(f"unsupported conv padding config: {m}")
            m.__class__ = TFSamePadConv2d
            n += 1
    return n


@torch.no_grad()
def randomize_(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0.0, 0.1, generator=g)
            m.running_mean.normal_(0.0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
        elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            m.bias.normal_(0.0, 0.05, generator=g)


@torch.no_grad()
def perturb_affine_(model, seed, edge_weights=(-0.3, 1.5)):
    """effdet's and smp's fixtures: BatchNorm/GroupNorm weight ~ U(0.5, 1.5), bias ~ N(0, 0.1), conv biases +=
    N(0, 0.05), BiFPN fusion weights ~ U(edge_weights); running statistics are left to calibrate_bn_."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0.0, 0.1, generator=g)
        elif isinstance(m, nn.Conv2d) and m.bias is not None:
            m.bias.add_(torch.randn(m.bias.shape, generator=g) * 0.05)
        if getattr(m, "edge_weights", None) is not None:
            m.edge_weights.uniform_(*edge_weights, generator=g)


@torch.no_grad()
def calibrate_bn_(model, x, seed, var_floor=0.0):
    """Re-derive BN running stats from the real activations of one eval-mode pass on `x`,
    then perturb them: running_mean = mean + N(0, 0.1) * std, running_var = var * U(0.5, 1.5).
    `var_floor`: each variance is at least this fraction of its layer's mean variance (a channel a ReLU zeroes on
    the whole batch would otherwise get variance ~0 and amplify float rounding a thousandfold).

    Modules run in order and each pre-hook updates its BN before that BN runs, so every
    layer sees inputs produced with the already-calibrated earlier layers.
    """
    g = torch.Generator().manual_seed(seed + CALIB_STATS_SEED_OFFSET)

    def hook(mod, inp):
        var, mean = torch.var_mean(inp[0], dim=(0, 2, 3), unbiased=False)
        var = var.clamp_min(max(1e-6, var_floor * float(var.mean())))
        mod.running_mean.copy_(mean + torch.randn(mean.shape, generator=g) * 0.1 * var.sqrt())
        mod.running_var.copy_(var * torch.empty(var.shape).uniform_(0.5, 1.5, generator=g))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, nn.BatchNorm2d)]
    try:
        model.eval()
        model(x)
    finally:
        for h in handles:
            h.remove()


def build_model(variant, num_classes=1000, seed=0, padding="symmetric", bn_stats="random",
                resolution=None, batch=2):
    """Returns (model in eval mode, number of convs converted to SAME padding).

    bn_stats="calibrated" needs resolution/batch (calibration input shape). Calibration is
    done before the SAME-padding swap, so both paddings share identical weights.
    """
    if variant not in DEFAULT_RESOLUTION:
        raise KeyError(variant)
    torch.manual_seed(seed)
    model = getattr(torchvision.models, variant)(weights=None, num_classes=num_classes)
    randomize_(model, seed)
    if bn_stats == "calibrated":
        res = resolution or DEFAULT_RESOLUTION[variant]
        g = torch.Generator().manual_seed(seed + CALIB_INPUT_SEED_OFFSET)
        calibrate_bn_(model, torch.randn(max(batch, 2), 3, res, res, generator=g), seed)
    elif bn_stats != "random":
        raise ValueError(bn_stats)
    n_same = apply_same_padding(model) if padding == "same" else 0
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, n_same


def make_input(batch, resolution, seed):
    g = torch.Generator().manual_seed(seed + INPUT_SEED_OFFSET)
    return torch.randn(batch, 3, resolution, resolution, generator=g, dtype=torch.float32)


def _atomic(path, write):
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_bytes_atomic(path, data):
    def w(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    _atomic(path, w)


def write_safetensors(path, state_dict):
    header = {}
    arrays = []
    offset = 0
    for name, t in state_dict.items():
        if t.dtype not in SAFETENSORS_DTYPES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        st_dtype, np_dtype = SAFETENSORS_DTYPES[t.dtype]
        # Shares memory with the tensor when already contiguous little-endian.
        a = np.ascontiguousarray(t.detach().cpu().numpy()).astype(np_dtype, copy=False)
        nbytes = a.nbytes
        header[name] = {"dtype": st_dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        arrays.append(a)
        offset += nbytes
    header["__metadata__"] = {"format": "pt"}
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)

    def w(tmp):
        with open(tmp, "wb") as f:
            f.write(len(hbytes).to_bytes(8, "little"))
            f.write(hbytes)
            for a in arrays:
                f.write(memoryview(a.reshape(-1)).cast("B"))
    _atomic(path, w)
    return 8 + len(hbytes) + offset


def read_safetensors(path):
    """Hand-rolled reader (for checks): returns an ordered dict name -> torch.Tensor."""
    inv = {"F32": "<f4", "I64": "<i8"}
    with open(path, "rb") as f:
        buf = f.read()
    n = int.from_bytes(buf[:8], "little")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        a = np.frombuffer(buf, dtype=inv[info["dtype"]], count=(e - b) // np.dtype(inv[info["dtype"]]).itemsize,
                          offset=base + b).reshape(info["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


def _save_npy_atomic(path, arr):
    def w(tmp):
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
    _atomic(path, w)


def export_onnx(model, x, path):
    max_opset = getattr(torch.onnx._constants, "ONNX_MAX_OPSET", 17)
    opset = min(17, max_opset)

    def w(tmp):
        with torch.no_grad():
            torch.onnx.export(model, x, tmp, opset_version=opset,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              do_constant_folding=True)
    _atomic(path, w)
    return opset


def main(argv=None):
    ap = argparse.ArgumentParser(description="torchvision EfficientNet reference fixtures")
    ap.add_argument("--variant", required=True, help="efficientnet_b0..b7, efficientnet_v2_s/m/l")
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--resolution", type=int, default=None,
                    help="input H=W (default: torchvision eval crop for the variant)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--padding", choices=["symmetric", "same"], default="symmetric")
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--export-onnx", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bn-stats", choices=["random", "calibrated"], default="calibrated",
                    help="random: running stats drawn as documented (the signal from the input "
                         "mostly dies in the trunk, logits ~ constant); calibrated: stats from "
                         "one pass on a separate seeded N(0,1) batch, perturbed (see calibrate_bn_)")
    args = ap.parse_args(argv)

    if args.variant not in DEFAULT_RESOLUTION:
        print(f"error: unknown variant {args.variant!r}; expected one of: "
              f"{', '.join(DEFAULT_RESOLUTION)}", file=sys.stderr)
        return 2
    if args.batch < 1 or args.num_classes < 1 or args.threads < 1:
        print("error: --batch, --num-classes and --threads must be >= 1", file=sys.stderr)
        return 2
    resolution = args.resolution or DEFAULT_RESOLUTION[args.variant]
    if resolution < 1:
        print("error: --resolution must be >= 1", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    t = {}

    t0 = time.perf_counter()
    model, n_same = build_model(args.variant, args.num_classes, args.seed, args.padding,
                                args.bn_stats, resolution, args.batch)
    x = make_input(args.batch, resolution, args.seed)
    t["build_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with torch.no_grad():
        logits = model(x)
    logits_np = logits.numpy()
    t["forward_s"] = time.perf_counter() - t0

    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    meta = {
        "variant": args.variant,
        "resolution": resolution,
        "batch": args.batch,
        "seed": args.seed,
        "input_seed": args.seed + INPUT_SEED_OFFSET,
        "padding": args.padding,
        "same_padded_convs": n_same,
        "num_classes": args.num_classes,
        "bn_eps": bn.eps,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "max_abs_logit": float(np.abs(logits_np).max()),
        "bn_stats": args.bn_stats,
    }
    # How much the logits depend on the input at all: max|l[0] - l[1]| / max|l|.
    max_abs = meta["max_abs_logit"]
    sens = (float(np.abs(logits_np[0] - logits_np[1:]).max()) / max_abs
            if args.batch >= 2 and max_abs > 0 else None)
    meta["input_sensitivity"] = sens
    if sens is not None and sens < 1e-3:
        print(f"warning: logits barely depend on the input (input_sensitivity={sens:.2e}); "
              "a 1e-4 relative tolerance will not catch trunk errors. Consider "
              "--bn-stats calibrated.", file=sys.stderr)

    t0 = time.perf_counter()
    sd = model.state_dict()
    meta["num_tensors"] = len(sd)
    meta["num_params"] = int(sum(v.numel() for v in sd.values() if v.dtype == torch.float32))
    write_safetensors(os.path.join(args.out, "weights.safetensors"), sd)
    _save_npy_atomic(os.path.join(args.out, "input.npy"), x.numpy())
    _save_npy_atomic(os.path.join(args.out, "logits.npy"), logits_np)
    t["write_s"] = time.perf_counter() - t0

    if args.export_onnx:
        t0 = time.perf_counter()
        meta["torch_onnx_opset"] = export_onnx(model, x, os.path.join(args.out, "torch.onnx"))
        t["onnx_s"] = time.perf_counter() - t0

    _write_bytes_atomic(os.path.join(args.out, "meta.json"),
                        (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    print(json.dumps(meta, separators=(",", ":")))
    print("timings " + json.dumps({k: round(v, 3) for k, v in t.items()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
