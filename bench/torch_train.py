"""PyTorch CPU training speed of a compound-scaled EfficientNet (the same architecture effnet builds for phi).
Usage: torch_train.py <phi> <batch> <res> <steps> <threads>. Prints {"latencies": [...ms per step], "peakRssMB"}."""
import json
import resource
import sys
import time

import torch
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

phi, batch, res, steps, threads = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
setting, last = _efficientnet_conf("efficientnet_b0", width_mult=1.1 ** phi, depth_mult=1.2 ** phi)
model = EfficientNet(setting, dropout=0.2, last_channel=last, num_classes=10)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
x = torch.randn(batch, 3, res, res)
y = torch.randint(0, 10, (batch,))
loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
model.train()
lat = []
for i in range(steps + 2):
    t = time.perf_counter()
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    if i >= 2:
        lat.append((time.perf_counter() - t) * 1000)
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"latencies": lat, "params": params, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
