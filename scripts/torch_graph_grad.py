"""PyTorch autograd reference for effnet's training compiler: runs an effnet graph (the IR, graph.json) in torch,
node by node, in float64, and writes the gradients of sum_o <output_o, seed_o> with respect to every parameter and
the image input, the outputs and the new BatchNorm running statistics.

Usage: torch_graph_grad.py <case dir> [<case dir> ...]
Each case dir holds graph.json, tensors.safetensors (parameters by name, the image as "input:<name>", seeds as
"seed:<output>", dropout/drop-path masks as "mask:<node>", loss targets as "target:<name>") and meta.json
({"trainBatchNorm": bool, "loss": an effnet LossSpec or absent}). With a loss, the objective is that loss, computed
by the peers' own code where they have it (effdet's focal and Huber losses, segmentation_models_pytorch's DiceLoss,
torch's cross_entropy); without one, sum_o <output_o, seed_o>. The script writes result.safetensors there
("grad:<param or input>", "out:<output>", "new:<running stat>", "loss").
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from torchvision_reference import read_safetensors, write_safetensors  # noqa: E402

torch.set_num_threads(2)


def same_pads(size, k, s, d):
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_pads(padding, h, w, kernel, stride, dilation):
    """[top, left, bottom, right], as effnet's resolvePads."""
    mode = padding["mode"]
    if mode == "explicit":
        return list(padding["pads"])
    if mode == "symmetric":
        ph = (kernel[0] - 1) * dilation[0] // 2
        pw = (kernel[1] - 1) * dilation[1] // 2
        return [ph, pw, ph, pw]
    t, b = same_pads(h, kernel[0], stride[0], dilation[0])
    l, r = same_pads(w, kernel[1], stride[1], dilation[1])
    return [t, l, b, r]


def act(fn, x):
    return {
        "identity": lambda v: v,
        "relu": F.relu,
        "relu6": F.relu6,
        "silu": F.silu,
        "sigmoid": torch.sigmoid,
        "gelu": F.gelu,
        "hardSwish": F.hardswish,
        "hardSigmoid": F.hardsigmoid,
        "tanh": torch.tanh,
    }[fn](x)


def run(graph, p, inputs, masks, train_bn):
    vals = dict(inputs)
    new_stats = {}
    for n in graph["nodes"]:
        xs = [vals[i] for i in n["inputs"]]
        x = xs[0]
        k = n["kind"]
        if k == "conv2d":
            t, l, b, r = resolve_pads(n["padding"], x.shape[2], x.shape[3], n["kernel"], n["stride"], n["dilation"])
            bias = p[n["params"]["bias"]] if n["params"].get("bias") else None
            y = F.conv2d(F.pad(x, [l, r, t, b]), p[n["params"]["weight"]], bias, n["stride"], 0, n["dilation"], n["groups"])
        elif k == "convTranspose":
            full = F.conv_transpose2d(x, p[n["params"]["weight"]], None, n["stride"], groups=n["groups"])
            t, l, b, r = n["pads"]
            oph, opw = n["outputPadding"]
            hout = full.shape[2] - t - b + oph
            wout = full.shape[3] - l - r + opw
            full = F.pad(full, [0, max(0, opw - r), 0, max(0, oph - b)])
            y = full[:, :, t:t + hout, l:l + wout]
            if n["params"].get("bias"):
                y = y + p[n["params"]["bias"]].view(1, -1, 1, 1)
        elif k == "batchNorm":
            q = n["params"]
            rm = p[q["runningMean"]].detach().clone()
            rv = p[q["runningVar"]].detach().clone()
            y = F.batch_norm(x, rm, rv, p[q["weight"]], p[q["bias"]], training=train_bn, momentum=n["momentum"], eps=n["eps"])
            if train_bn:
                new_stats[q["runningMean"]] = rm
                new_stats[q["runningVar"]] = rv
        elif k == "groupNorm":
            q = n["params"]
            y = F.group_norm(x, n["groups"], p[q["weight"]], p[q["bias"]], n["eps"])
        elif k == "activation":
            y = act(n["fn"], x)
        elif k == "softmax":
            y = torch.softmax(x, n["axis"])
        elif k == "add":
            y = xs[0]
            for o in xs[1:]:
                y = y + o
        elif k == "mul":
            y = xs[0] * xs[1]
        elif k == "globalAvgPool":
            y = x.mean((2, 3), keepdim=n["keepDims"])
        elif k == "flatten":
            y = x.flatten(1)
        elif k == "dense":
            bias = p[n["params"]["bias"]] if n["params"].get("bias") else None
            y = F.linear(x, p[n["params"]["weight"]], bias)
        elif k in ("dropout", "dropPath"):
            key = "mask:" + n["name"]
            y = x * masks[key] if key in masks else x
        elif k == "maxPool":
            t, l, b, r = resolve_pads(n["padding"], x.shape[2], x.shape[3], n["kernel"], n["stride"], [1, 1])
            y = F.max_pool2d(F.pad(x, [l, r, t, b], value=-math.inf), n["kernel"], n["stride"])
        elif k == "resize":
            mode = "nearest" if n["mode"] == "nearest" else "bilinear"
            ac = n["alignCorners"] if mode == "bilinear" else None
            if len(xs) > 1:
                y = F.interpolate(x, size=tuple(xs[1].shape[2:]), mode=mode, align_corners=ac)
            else:
                y = F.interpolate(x, scale_factor=n["scale"], mode=mode, align_corners=ac)
        elif k == "concat":
            y = torch.cat(xs, n["axis"])
        elif k == "weightedSum":
            raw = p[n["params"]["weight"]]
            if n["normalization"] == "fast":
                w = F.relu(raw)
                w = w / (w.sum() + n["epsilon"])
            else:
                w = torch.softmax(raw, 0)
            y = sum(w[i] * xi for i, xi in enumerate(xs))
        else:
            raise ValueError(f"unknown node kind {k}")
        vals[n["name"]] = y
    return vals, new_stats


def loss_term(term, vals, targets):
    out = vals[term["output"]]
    kind = term["kind"]
    if kind == "softmaxCrossEntropy":
        ii = term.get("ignoreIndex")
        return F.cross_entropy(out, targets[term["target"]].long(), ignore_index=-100 if ii is None else ii,
                               label_smoothing=term.get("labelSmoothing", 0.0))
    if kind == "sigmoidFocal":
        from effdet.loss import new_focal_loss
        t = targets[term["target"]].double()
        valid = (t != term.get("ignoreValue", -2)).double()
        per = new_focal_loss(out, t * valid, alpha=term.get("alpha", 0.25), gamma=term.get("gamma", 1.5),
                             normalizer=targets[term["normalizer"]].double().reshape(()), label_smoothing=0.0)
        return (per * valid).sum()
    if kind == "huber":
        from effdet.loss import huber_loss
        return huber_loss(out, targets[term["target"]].double(), delta=term.get("delta", 0.1),
                          weights=targets[term["mask"]].double(), size_average=False) / targets[term["normalizer"]].double().reshape(())
    if kind == "dice":
        from segmentation_models_pytorch.losses import DiceLoss
        fn = DiceLoss("multiclass", from_logits=True, smooth=term.get("smooth", 0.0), ignore_index=term.get("ignoreIndex"),
                      eps=term.get("eps", 1e-7))
        return fn(out, targets[term["target"]].long())
    raise ValueError(f"unknown loss term {kind}")


def main():
    for case in sys.argv[1:]:
        with open(os.path.join(case, "graph.json")) as f:
            graph = json.load(f)
        with open(os.path.join(case, "meta.json")) as f:
            meta = json.load(f)
        tensors = read_safetensors(os.path.join(case, "tensors.safetensors"))
        trainable = {q["name"] for q in graph["parameters"] if q["trainable"]}
        p = {}
        for q in graph["parameters"]:
            t = tensors[q["name"]].double()
            p[q["name"]] = t.requires_grad_(q["name"] in trainable)
        inputs = {i["name"]: tensors["input:" + i["name"]].double().requires_grad_(True) for i in graph["inputs"]}
        masks = {k: v.double() for k, v in tensors.items() if k.startswith("mask:")}
        vals, new_stats = run(graph, p, inputs, masks, meta["trainBatchNorm"])
        if meta.get("loss"):
            targets = {k[len("target:"):]: v for k, v in tensors.items() if k.startswith("target:")}
            loss = sum(term.get("weight", 1.0) * loss_term(term, vals, targets) for term in meta["loss"]["terms"])
        else:
            loss = sum((vals[o] * tensors["seed:" + o].double()).sum() for o in graph["outputs"])
        leaves = [(n, t) for n, t in list(p.items()) + list(inputs.items()) if t.requires_grad]
        grads = torch.autograd.grad(loss, [t for _, t in leaves], allow_unused=True)
        out = {}
        for (name, t), g in zip(leaves, grads):
            out["grad:" + name] = (g if g is not None else torch.zeros_like(t)).float()
        for o in graph["outputs"]:
            out["out:" + o] = vals[o].detach().float()
        for name, t in new_stats.items():
            out["new:" + name] = t.float()
        out["loss"] = loss.detach().float().reshape(1)
        write_safetensors(os.path.join(case, "result.safetensors"), out)


if __name__ == "__main__":
    main()
