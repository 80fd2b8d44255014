"""effdet's DetBenchPredict in PyTorch eager, timed on request, for bench/detect.mjs.

Usage: effdet_worker.py <model> <weights.safetensors> <threads>
  Builds effdet's model (create_model, nothing downloaded). When <weights.safetensors> does not exist it is written
  first from effdet's own initialisation (torch.manual_seed(0)), so that both sides of the bench load the same weights.
  Then reads lines "<batch> <iterations>" on stdin and answers each with one JSON line {"batch", "latencies"} (ms):
  the whole DetBenchPredict forward (network, top-k, decoding, batched NMS, 100 detections) with img_info (img_scale
  1, img_size the input size), on a fixed input already normalised (preprocessing excluded), after one warm-up run.
  "quit" ends it.
"""
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch  # noqa: E402
from torchvision_reference import read_safetensors, write_safetensors  # noqa: E402

from effdet import DetBenchPredict, create_model  # noqa: E402


def bench_input(batch, h, w):
    """The input bench/detect.mjs feeds effnet: sin(i) * 0.5 over the flattened NCHW batch, in float32."""
    return (torch.sin(torch.arange(batch * 3 * h * w, dtype=torch.float64)) * 0.5).float().reshape(batch, 3, h, w)


def main():
    name, weights, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(name, pretrained=False, pretrained_backbone=False)
    if not os.path.exists(weights):
        write_safetensors(weights + ".tmp", model.state_dict())
        os.replace(weights + ".tmp", weights)
    model.load_state_dict(read_safetensors(weights), strict=True)
    bench = DetBenchPredict(model).eval()
    h, w = model.config.image_size
    print(json.dumps({"ready": True, "image_size": [h, w], "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        batch, iters = (int(v) for v in line.split())
        x = bench_input(batch, h, w)
        info = {"img_scale": torch.ones(batch), "img_size": torch.tensor([[w, h]] * batch, dtype=torch.float32)}
        lat = []
        with torch.inference_mode():
            bench(x, info)
            for _ in range(iters):
                t = time.perf_counter()
                bench(x, info)
                lat.append((time.perf_counter() - t) * 1000)
        print(json.dumps({"batch": batch, "latencies": lat, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    main()
