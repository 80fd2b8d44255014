"""Times torchvision eager inference in a process of its own. Usage: torch_worker.py <weights dir> <variant> <batch> <res> <iters> <threads>"""
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import torch  # noqa: E402
import torchvision  # noqa: E402
from torchvision_reference import read_safetensors  # noqa: E402

fixture, variant, batch, res, iters, threads = sys.argv[1:]
torch.set_num_threads(int(threads))
model = getattr(torchvision.models, variant)(weights=None)
state = read_safetensors(os.path.join(fixture, "weights.safetensors"))
model.load_state_dict(state, strict=True)
model.eval()
b, r = int(batch), int(res)
x = torch.sin(torch.arange(b * 3 * r * r, dtype=torch.float32)).reshape(b, 3, r, r) * 0.5
lat = []
with torch.inference_mode():
    for _ in range(3):
        model(x)
    for _ in range(int(iters)):
        t = time.perf_counter()
        model(x)
        lat.append((time.perf_counter() - t) * 1000)
print(json.dumps({"latencies": lat, "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
