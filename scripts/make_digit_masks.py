#!/usr/bin/python3
"""A small real segmentation dataset: scenes of sklearn's real handwritten digits (load_digits: 1797 8x8 scans by 43
writers), 1-3 digits per scene at random sizes, positions (no overlap), ink colours and backgrounds, with index masks
in VOC's form: 0 background, 1 + the digit where the resized ink is above one half, 255 (ignore) on the faint rim
between 0.2 and 0.5. The train and val splits use disjoint halves of the scans (a val digit was never seen in
training). Written as effnet segmentation datasets: DIR/images/*.png, DIR/masks/*.png (palette PNGs), classes.txt.

Usage: /usr/bin/python3 scripts/make_digit_masks.py OUT_DIR [--train 400] [--val 100] [--size 64] [--seed 0]
Writes OUT_DIR/train and OUT_DIR/val. Needs Debian's python3-sklearn and python3-pil.
"""
import argparse
import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

CLASSES = ["background"] + [f"digit {d}" for d in range(10)]


def scene(rng, digits, labels, size):
    bg = rng.integers(40, 216, 3)
    img = np.ones((size, size, 3), np.float32) * bg + rng.normal(0, 8, (size, size, 3))
    mask = np.zeros((size, size), np.uint8)
    placed = []
    lo, hi = size // 4, size // 2
    for _ in range(rng.integers(1, 4)):
        for _attempt in range(20):
            side = int(rng.integers(lo, hi + 1))
            x0, y0 = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
            if all(x0 + side <= bx or bx + bw <= x0 or y0 + side <= by or by + bh <= y0 for bx, by, bw, bh in placed):
                break
        else:
            continue
        placed.append((x0, y0, side, side))
        k = int(rng.integers(0, len(digits)))
        ink = digits[k] / 16.0
        patch = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR), np.float32) / 255
        colour = rng.integers(0, 256, 3)
        if np.abs(colour - bg).sum() < 150:
            colour = 255 - bg
        region = img[y0:y0 + side, x0:x0 + side]
        img[y0:y0 + side, x0:x0 + side] = region * (1 - patch[..., None]) + colour * patch[..., None]
        m = mask[y0:y0 + side, x0:x0 + side]
        m[patch > 0.2] = 255
        m[patch > 0.5] = labels[k] + 1
    return np.clip(img, 0, 255).astype(np.uint8), mask


def palette():
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    out[255 * 3:] = [255, 255, 255]
    return out


def write(out, n, digits, labels, size, rng):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "masks"), exist_ok=True)
    with open(os.path.join(out, "classes.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    pal = palette()
    for i in range(n):
        img, mask = scene(rng, digits, labels, size)
        Image.fromarray(img).save(os.path.join(out, "images", f"{i:04d}.png"))
        m = Image.fromarray(mask, mode="L").convert("P")
        m.putdata(mask.flatten().tolist())
        m.putpalette(pal)
        m.save(os.path.join(out, "masks", f"{i:04d}.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    d = load_digits()
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(d.images))
    half = len(order) // 2
    write(os.path.join(a.out, "train"), a.train, d.images[order[:half]], d.target[order[:half]], a.size, rng)
    write(os.path.join(a.out, "val"), a.val, d.images[order[half:]], d.target[order[half:]], a.size, rng)


if __name__ == "__main__":
    main()
