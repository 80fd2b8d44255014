"""PyTorch training steps on an EfficientNet, as the reference for effnet's trainers (tfjs and ONNX Runtime).
Usage: torch_train_step.py <dir> <model> <num_classes> <lr> <optimizer: sgd|adam|adamw> <steps> [<options JSON>]
   or: torch_train_step.py --many <JSON file: a list of such argument lists>
<model>: a compound-scaling phi (torchvision's EfficientNet at that size, torchvision names) or timm:<name> (timm's
model, timm names, which are effnet's). Options: momentum, nesterov, weightDecay (default 0.01 for adamw, else 0),
clipGradNorm, labelSmoothing (default 0.1), bnMomentum (every BatchNorm's, e.g. the graph's 0.01 for tf_ models).
Reads <dir>/weights.safetensors, input.npy (float32 NCHW), labels.npy (int64); writes <dir>/after.safetensors
(state_dict after the steps) and result.json (losses, grad norms before clipping)."""
import json
import os
import sys

import numpy as np
import torch
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

sys.path.insert(0, os.path.dirname(__file__))
from torchvision_reference import read_safetensors, write_safetensors  # noqa: E402

def run(argv):
    d, model_arg, num_classes, lr, opt_kind, steps = argv[0], argv[1], int(argv[2]), float(argv[3]), argv[4], int(argv[5])
    o = json.loads(argv[6]) if len(argv) > 6 else {}
    if model_arg.startswith("timm:"):
        import timm
        model = timm.create_model(model_arg[5:], num_classes=num_classes, drop_rate=0.0, drop_path_rate=0.0)
    else:
        phi = float(model_arg)
        setting, last = _efficientnet_conf("efficientnet_b0", width_mult=1.1 ** phi, depth_mult=1.2 ** phi)
        model = EfficientNet(setting, dropout=0.0, stochastic_depth_prob=0.0, last_channel=last, num_classes=num_classes)
    model.load_state_dict(read_safetensors(os.path.join(d, "weights.safetensors")), strict=True)
    if "bnMomentum" in o:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = o["bnMomentum"]
    x = torch.from_numpy(np.load(os.path.join(d, "input.npy")))
    y = torch.from_numpy(np.load(os.path.join(d, "labels.npy")))
    wd = o.get("weightDecay", 0.01 if opt_kind == "adamw" else 0.0)
    if opt_kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=o.get("momentum", 0.0), nesterov=o.get("nesterov", False), weight_decay=wd)
    elif opt_kind == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=o.get("labelSmoothing", 0.1))
    model.train()
    losses, norms = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if "clipGradNorm" in o:
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), o["clipGradNorm"])))
        else:
            norms.append(float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))))
        opt.step()
        losses.append(loss.item())
    write_safetensors(os.path.join(d, "after.safetensors"), model.state_dict())
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump({"losses": losses, "gradNorms": norms}, f)


torch.set_num_threads(2)
if sys.argv[1] == "--many":
    # One process for several runs (torch's import dominates small ones): a JSON list of argument lists.
    with open(sys.argv[2]) as f:
        for argv in json.load(f):
            run(argv)
else:
    run(sys.argv[1:])
