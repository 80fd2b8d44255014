"""A small real image-classification set: sklearn's handwritten digits (1,797 scans of 8x8 pixels from 43 writers)
as 32 px RGB PNGs in ImageFolder layout, OUT/train/<digit>/ and OUT/val/<digit>/ (a seeded, stratified 80/20 split).
Used to measure fine-tuning recipes (README "Fine-tuning defaults") and the ONNX and tfjs training backends.

Usage: /usr/bin/python3 scripts/make_digits_folder.py OUT_DIR [--size 32] [--seed 0]
Needs Debian's python3-sklearn.
"""
import argparse
import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    d = load_digits()
    idx = np.arange(len(d.target))
    train, val = train_test_split(idx, test_size=0.2, random_state=a.seed, stratify=d.target)
    for split, ids in (("train", train), ("val", val)):
        for i in ids:
            grey = (d.images[i] / 16.0 * 255).astype(np.uint8)
            img = Image.fromarray(grey).resize((a.size, a.size), Image.BILINEAR).convert("RGB")
            folder = os.path.join(a.out, split, str(d.target[i]))
            os.makedirs(folder, exist_ok=True)
            img.save(os.path.join(folder, f"{i:04d}.png"))
    print(f"{len(train)} training and {len(val)} validation images in {a.out}/train and {a.out}/val")


if __name__ == "__main__":
    main()
