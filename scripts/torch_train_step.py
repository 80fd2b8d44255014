"""One PyTorch training step on a torchvision EfficientNet of a compound-scaled size, as a reference for the tfjs
trainer. Usage: torch_train_step.py <dir> <phi> <num_classes> <lr> <optimizer: sgd|adamw> <steps>
Reads <dir>/weights.safetensors (torchvision names), input.npy (float32 NCHW), labels.npy (int64); writes
<dir>/after.safetensors (state_dict after the steps, torchvision names) and result.json (losses)."""
import json
import os
import sys

import numpy as np
import torch
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

sys.path.insert(0, os.path.dirname(__file__))
from torchvision_reference import read_safetensors, write_safetensors  # noqa: E402

d, phi, num_classes, lr, opt_kind, steps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], int(sys.argv[6])
torch.set_num_threads(2)
setting, last = _efficientnet_conf("efficientnet_b0", width_mult=1.1 ** phi, depth_mult=1.2 ** phi)
model = EfficientNet(setting, dropout=0.0, stochastic_depth_prob=0.0, last_channel=last, num_classes=num_classes)
model.load_state_dict(read_safetensors(os.path.join(d, "weights.safetensors")), strict=True)
x = torch.from_numpy(np.load(os.path.join(d, "input.npy")))
y = torch.from_numpy(np.load(os.path.join(d, "labels.npy")))
opt = torch.optim.SGD(model.parameters(), lr=lr) if opt_kind == "sgd" else torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
model.train()
losses = []
for _ in range(steps):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
write_safetensors(os.path.join(d, "after.safetensors"), model.state_dict())
with open(os.path.join(d, "result.json"), "w") as f:
    json.dump({"losses": losses}, f)
