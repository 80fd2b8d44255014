"""The PyTorch side of bench/finetune.mjs: fine-tunes torchvision's EfficientNet (the same network and starting
weights as effnet's run) on an ImageFolder with torchvision's transfer-learning tutorial recipe, and prints JSON.

Usage: torch_finetune.py WEIGHTS(torchvision names) PHI TRAIN_DIR VAL_DIR EPOCHS SIZE MEAN STD [RECIPE]
RECIPE: tutorial (SGD lr 1e-3 momentum 0.9, StepLR(7, 0.1), RandomResizedCrop + flip, the tutorial's choice) or
adam (Adam lr 1e-3, the same transforms). Batch 32, 2 threads, seed 0.
"""
import json
import sys
import time

import torch
import torchvision
from torchvision import transforms
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/scripts")
from torchvision_reference import read_safetensors  # noqa: E402


def main():
    weights, phi, train_dir, val_dir, epochs, size = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    mean, std = json.loads(sys.argv[7]), json.loads(sys.argv[8])
    recipe = sys.argv[9] if len(sys.argv) > 9 else "tutorial"
    torch.manual_seed(0)
    torch.set_num_threads(2)
    norm = transforms.Normalize(mean, std)
    train_tf = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    val_tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(), norm])
    train = torchvision.datasets.ImageFolder(train_dir, train_tf)
    val = torchvision.datasets.ImageFolder(val_dir, val_tf)
    state = read_safetensors(weights)
    setting, _ = _efficientnet_conf("efficientnet_b0", width_mult=1.1 ** phi, depth_mult=1.2 ** phi)
    # The head's width as effnet (and timm) round it: 1280 scaled and made divisible by 8 (torchvision takes 4x the last stage's).
    last = state["features.%d.0.weight" % (len(setting) + 1)].shape[0]
    model = EfficientNet(setting, dropout=0.2, stochastic_depth_prob=0.2, last_channel=last, num_classes=state["classifier.1.weight"].shape[0])
    model.load_state_dict(state, strict=True)
    model.classifier[1] = torch.nn.Linear(model.classifier[1].in_features, len(train.classes))
    if recipe == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    tl = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, num_workers=0)
    vl = torch.utils.data.DataLoader(val, batch_size=64)
    history = []
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        for x, y in tl:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        sched.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in vl:
                correct += (model(x).argmax(1) == y).sum().item()
        history.append(correct / len(val))
    print(json.dumps({"recipe": recipe, "valAccuracy": history[-1], "best": max(history), "history": history, "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
