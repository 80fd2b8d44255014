"""The timm round trip: an effnet checkpoint loads into timm, trains there under DistributedDataParallel, and goes back.

Usage: /usr/bin/python3 scripts/timm_roundtrip.py --weights CKPT/model.safetensors --arch efficientnet_b0 \
           --num-classes 10 --input x.npy --out DIR [--train-steps 2]

1. timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=WEIGHTS, num_classes=N), num_classes=N):
   timm's own loader reads effnet's safetensors (effnet's canonical names are timm's). The `safetensors` package in
   ../shared/peers is an offline stub whose load_file raises, so it is replaced here by a small numpy reader of the same
   format (with the real package installed, nothing needs replacing). The classifier is loaded too: num_classes in the
   overlay matches, so timm does not drop it.
2. The loaded model's eval logits on --input -> DIR/logits_loaded.npy.
3. --train-steps SGD steps under DistributedDataParallel in one process (gloo, world size 1: what torchrun runs in
   each process), on seeded random images and labels with BatchNorm in train mode, so weights and running stats move.
4. Eval logits after training -> DIR/logits_trained.npy. The state_dict of model.module (as a DDP script saves it) ->
   DIR/trained.safetensors (numpy writer) and DIR/trained.pth (torch.save).
5. DIR/meta.json, last.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_reference import read_safetensors, write_safetensors  # noqa: E402

import safetensors.torch  # noqa: E402  (the peers' stub, or the real package)
import timm  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--weights", required=True)
ap.add_argument("--arch", required=True)
ap.add_argument("--num-classes", type=int, required=True)
ap.add_argument("--input", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--train-steps", type=int, default=2)
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
torch.manual_seed(0)


def numpy_load_file(path, device="cpu"):
    return read_safetensors(path)


safetensors.torch.load_file = numpy_load_file

model = timm.create_model(
    args.arch,
    pretrained=True,
    pretrained_cfg_overlay=dict(file=args.weights, num_classes=args.num_classes),
    num_classes=args.num_classes,
)
x = torch.from_numpy(np.load(args.input))
model.eval()
with torch.no_grad():
    loaded = model(x)
np.save(os.path.join(args.out, "logits_loaded.npy"), loaded.numpy())

# Training as a torchrun worker does it, with one process.
with tempfile.TemporaryDirectory() as rendezvous:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}/store", rank=0, world_size=1)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1)
    losses = []
    ddp.train()
    for _ in range(args.train_steps):
        images = torch.randn(8, *x.shape[1:], generator=g)
        labels = torch.randint(0, args.num_classes, (8,), generator=g)
        loss = torch.nn.functional.cross_entropy(ddp(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    state = ddp.module.state_dict()
    dist.destroy_process_group()

model.eval()
with torch.no_grad():
    trained = model(x)
np.save(os.path.join(args.out, "logits_trained.npy"), trained.numpy())
write_safetensors(os.path.join(args.out, "trained.safetensors"), state)
torch.save(state, os.path.join(args.out, "trained.pth"))
with open(os.path.join(args.out, "meta.json"), "w") as f:
    json.dump({"timm": timm.__version__, "torch": torch.__version__, "arch": args.arch, "losses": losses,
               "tensors": len(state), "max_abs_logit": float(loaded.abs().max())}, f)
