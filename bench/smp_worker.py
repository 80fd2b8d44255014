"""smp's segmenter in PyTorch eager, timed on request, for bench/segment.mjs.

Usage: smp_worker.py <effnet segmenter name> <classes> <weights.safetensors> <threads> <size>
  Builds smp's model (timm-efficientnet encoder, nothing downloaded). When <weights.safetensors> does not exist it is
  written first from smp's own initialisation (torch.manual_seed(0)), so that both sides of the bench load the same
  weights. Then reads lines "<batch> <iterations>" and answers each with one JSON line {"batch", "latencies" (ms),
  "peakRssMB"}: model(x) under inference_mode on a fixed input, after one warm-up run. "quit" ends it.
"""
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch  # noqa: E402
from smp_reference import build  # noqa: E402
from torchvision_reference import read_safetensors, write_safetensors  # noqa: E402


def main():
    name, classes, weights, threads, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name, classes)
    if not os.path.exists(weights):
        write_safetensors(weights + ".tmp", model.state_dict())
        os.replace(weights + ".tmp", weights)
    model.load_state_dict(read_safetensors(weights), strict=True)
    model.eval()
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        batch, iters = (int(v) for v in line.split())
        x = (torch.sin(torch.arange(batch * 3 * size * size, dtype=torch.float64)) * 0.5).float().reshape(batch, 3, size, size)
        lat = []
        with torch.inference_mode():
            model(x)
            for _ in range(iters):
                t = time.perf_counter()
                model(x)
                lat.append((time.perf_counter() - t) * 1000)
        print(json.dumps({"batch": batch, "latencies": lat, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    main()
