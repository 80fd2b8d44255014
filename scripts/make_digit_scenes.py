#!/usr/bin/python3
"""A small real detection dataset: scenes of sklearn's real handwritten digits (load_digits: 1797 8x8 scans by 43
writers), each scene 128x128 with 1-4 digits at random sizes (16-44 px), positions (no two overlapping), ink colours
and backgrounds, written as COCO directories (annotations.json + images/), the train and val splits drawn from
disjoint halves of the scanned digits (so a val digit was never seen in training).

Usage: /usr/bin/python3 scripts/make_digit_scenes.py OUT_DIR [--train 300] [--val 100] [--size 128] [--seed 0]
Writes OUT_DIR/train and OUT_DIR/val. Needs Debian's python3-sklearn and python3-skimage (for the resize).
"""
import argparse
import json
import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def scene(rng, digits, labels, size):
    bg = rng.integers(40, 216, 3)
    img = np.ones((size, size, 3), np.float32) * bg + rng.normal(0, 8, (size, size, 3))
    boxes, classes = [], []
    for _ in range(rng.integers(1, 5)):
        for _attempt in range(20):
            side = int(rng.integers(16, 45))
            x0, y0 = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
            if all(x0 + side <= bx or bx + bw <= x0 or y0 + side <= by or by + bh <= y0 for bx, by, bw, bh in boxes):
                break
        else:
            continue
        k = int(rng.integers(0, len(digits)))
        ink = digits[k] / 16.0
        patch = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR), np.float32) / 255
        colour = rng.integers(0, 256, 3)
        if np.abs(colour - bg).sum() < 150:
            colour = 255 - bg
        region = img[y0:y0 + side, x0:x0 + side]
        img[y0:y0 + side, x0:x0 + side] = region * (1 - patch[..., None]) + colour * patch[..., None]
        ys, xs = np.nonzero(patch > 0.25)
        if len(xs) == 0:
            continue
        bx, by = x0 + int(xs.min()), y0 + int(ys.min())
        bw, bh = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
        boxes.append((bx, by, bw, bh))
        classes.append(int(labels[k]))
    return np.clip(img, 0, 255).astype(np.uint8), boxes, classes


def write(out, n, digits, labels, size, rng):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        img, boxes, classes = scene(rng, digits, labels, size)
        name = f"{i:04d}.png"
        Image.fromarray(img).save(os.path.join(out, "images", name))
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for (x, y, w, h), c in zip(boxes, classes):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c + 1, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    categories = [{"id": d + 1, "name": str(d)} for d in range(10)]
    with open(os.path.join(out, "annotations.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = load_digits()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(d.images))
    half = len(order) // 2
    write(os.path.join(args.out, "train"), args.train, d.images[order[:half]], d.target[order[:half]], args.size, rng)
    write(os.path.join(args.out, "val"), args.val, d.images[order[half:]], d.target[order[half:]], args.size, rng)


if __name__ == "__main__":
    main()
