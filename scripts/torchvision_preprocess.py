#!/usr/bin/python3
"""torchvision's eval preprocessing, for the parity tests of @effnet/tasks' image preprocessing.

Usage:
  /usr/bin/python3 scripts/torchvision_preprocess.py transform --image IMG --out OUT.npy --size 224
      [--crop-pct 0.875 | --resize-size 256] [--crop-mode center|squash]
      [--interpolation bicubic|bilinear|nearest] [--mean R G B] [--std R G B]
  /usr/bin/python3 scripts/torchvision_preprocess.py batch --jobs JOBS.json
  /usr/bin/python3 scripts/torchvision_preprocess.py pixels --image IMG --out OUT.npy
  /usr/bin/python3 scripts/torchvision_preprocess.py jpeg --image IMG --out OUT.jpg [--quality 90]

transform  writes float32 [3, size, size]: timm's transforms_imagenet_eval built from torchvision transforms,
           Compose([Resize(scale, interpolation), CenterCrop(size), ToTensor(), Normalize(mean, std)]) applied to
           PIL's Image.open(IMG).convert('RGB'). scale = --resize-size if given, else math.floor(size / crop_pct)
           (timm's rule; int() of the same positive double is the same number); with --crop-mode squash,
           Resize((scale, scale)) as timm's squash mode does.
batch      runs many transforms in one process (importing torch once): JOBS.json is a list of objects with the
           keys image, out, size and optionally crop_pct, resize_size, crop_mode, interpolation, mean, std.
pixels     writes PIL's Image.open(IMG).convert('RGB') as uint8 [height, width, 3].
jpeg       re-encodes IMG as a JPEG with PIL (quality 90 by default, 4:2:0 subsampling).

Every output is written to OUT.tmp first and then renamed into place. Prints a JSON summary on stdout.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def save_npy(path, array):
    tmp = path + '.tmp.npy'
    np.save(tmp, array)
    os.replace(tmp, path)


def transform(job):
    import torch
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    modes = {'bicubic': InterpolationMode.BICUBIC, 'bilinear': InterpolationMode.BILINEAR, 'nearest': InterpolationMode.NEAREST}
    size = int(job['size'])
    interpolation = job.get('interpolation') or 'bicubic'
    if job.get('resize_size') is not None:
        scale = int(job['resize_size'])
    else:
        crop_pct = float(job.get('crop_pct') or 0.875)
        scale = math.floor(size / crop_pct)
    resize = (scale, scale) if job.get('crop_mode') == 'squash' else scale
    mean = [float(x) for x in (job.get('mean') or IMAGENET_MEAN)]
    std = [float(x) for x in (job.get('std') or IMAGENET_STD)]
    pipeline = transforms.Compose([
        transforms.Resize(resize, interpolation=modes[interpolation]),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    with Image.open(job['image']) as im:
        image = im.convert('RGB')
    out = pipeline(image).numpy().astype(np.float32)
    assert out.shape == (3, size, size), out.shape
    save_npy(job['out'], out)
    return {'out': job['out'], 'image_size': list(image.size), 'scale': scale, 'interpolation': interpolation}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='command', required=True)
    t = sub.add_parser('transform')
    t.add_argument('--image', required=True)
    t.add_argument('--out', required=True)
    t.add_argument('--size', type=int, required=True)
    t.add_argument('--crop-pct', type=float)
    t.add_argument('--resize-size', type=int)
    t.add_argument('--crop-mode', choices=['center', 'squash'], default='center')
    t.add_argument('--interpolation', choices=['bicubic', 'bilinear', 'nearest'], default='bicubic')
    t.add_argument('--mean', type=float, nargs=3)
    t.add_argument('--std', type=float, nargs=3)
    b = sub.add_parser('batch')
    b.add_argument('--jobs', required=True)
    p = sub.add_parser('pixels')
    p.add_argument('--image', required=True)
    p.add_argument('--out', required=True)
    j = sub.add_parser('jpeg')
    j.add_argument('--image', required=True)
    j.add_argument('--out', required=True)
    j.add_argument('--quality', type=int, default=90)
    args = ap.parse_args(argv)

    if args.command == 'transform':
        result = transform({'image': args.image, 'out': args.out, 'size': args.size, 'crop_pct': args.crop_pct,
                            'resize_size': args.resize_size, 'crop_mode': args.crop_mode,
                            'interpolation': args.interpolation, 'mean': args.mean, 'std': args.std})
    elif args.command == 'batch':
        import torch
        torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))
        with open(args.jobs) as f:
            jobs = json.load(f)
        result = [transform(job) for job in jobs]
    elif args.command == 'pixels':
        with Image.open(args.image) as im:
            rgb = np.asarray(im.convert('RGB'), dtype=np.uint8)
        save_npy(args.out, np.ascontiguousarray(rgb))
        result = {'out': args.out, 'shape': list(rgb.shape)}
    else:
        with Image.open(args.image) as im:
            rgb = im.convert('RGB')
        tmp = args.out + '.tmp'
        rgb.save(tmp, format='JPEG', quality=args.quality)
        os.replace(tmp, args.out)
        result = {'out': args.out, 'size': list(rgb.size)}

    import PIL
    versions = {'PIL': PIL.__version__, 'numpy': np.__version__}
    if 'torchvision' in sys.modules:
        versions['torchvision'] = sys.modules['torchvision'].__version__
        versions['torch'] = sys.modules['torch'].__version__
    print(json.dumps({'result': result, 'versions': versions}))


if __name__ == '__main__':
    main(sys.argv[1:])
