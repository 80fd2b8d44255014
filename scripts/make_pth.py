#!/usr/bin/python3
"""PyTorch checkpoints (.pth) for the tests of effnet's .pth reader, written by torch.save itself.

Usage:
  /usr/bin/python3 scripts/make_pth.py --out DIR [--weights weights.safetensors]

Writes into DIR:
  dtypes.zip.pth, dtypes.legacy.pth   one state_dict in both formats (torch.save with and without
                                      _use_new_zipfile_serialization): float32/16/64, bfloat16, int64/32, uint8, bool,
                                      a transposed (non-contiguous) view, a strided slice with an offset, two tensors
                                      sharing one storage, a stride-0 (expanded) view, a 0-d and an empty tensor, an
                                      nn.Parameter
  expected/manifest.json              {name: {"dtype", "shape"}} for dtypes.*; expected/<name>.bin holds the values in
                                      C order, little-endian (bool as one byte 0/1, bfloat16/float16 as raw bits)
  checkpoint.zip.pth                  {"epoch", "arch", "state_dict", "optimizer" (SGD momentum state), "args"
                                      (argparse.Namespace), "metric" (a numpy float64), "note" (bytes)}
  ema.zip.pth                         {"state_dict": A, "state_dict_ema": B} (B = A + 1)
  ambiguous.zip.pth                   {"first": A, "second": B} (no conventional key)
  module.legacy.pth                   A with every name prefixed "module." (DataParallel), legacy format
  tensor.zip.pth                      a lone tensor
  small/<name>.bin + small.json       A and B's values (as expected/)
  hostile/<name>.pth                  pickles that would run code or break bounds, each named in hostile.json with the
                                      global it uses (or null) and the marker file its payload would create (paths
                                      relative to DIR)
  proof/                              the same payloads aimed at proof markers, loaded here with
                                      torch.load(weights_only=False) to show that they do run; hostile.json records it
With --weights (a state_dict as safetensors, e.g. scripts/torchvision_reference.py's weights.safetensors):
  weights.zip.pth, weights.legacy.pth that state_dict in both formats
  weights.nested.pth                  {"epoch", "state_dict", "optimizer", "args"}, legacy format
  weights.module.zip.pth              names prefixed "module."
"""

import argparse
import collections
import importlib.util
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import torch


def load_reference_module():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("torchvision_reference", os.path.join(here, "torchvision_reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


DTYPE_NAMES = {
    torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float64: "float64",
    torch.int64: "int64", torch.int32: "int32", torch.uint8: "uint8", torch.bool: "uint8",
}


def write_expected(dirname, tensors):
    os.makedirs(dirname, exist_ok=True)
    manifest = {}
    for name, t in tensors.items():
        manifest[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape)}
        with open(os.path.join(dirname, name + ".bin"), "wb") as f:
            f.write(raw_bytes(t))
    with open(os.path.join(dirname, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def dtype_state_dict():
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4, generator=g)
    sd["f16"] = torch.randn(5, generator=g).half()
    sd["bf16"] = torch.randn(2, 3, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, 2, generator=g).double()
    sd["i64"] = torch.tensor([0, -1, 2**40, -(2**62)], dtype=torch.int64)
    sd["i32"] = torch.tensor([[7, -8], [2**31 - 1, -(2**31)]], dtype=torch.int32)
    sd["u8"] = torch.arange(0, 250, 7, dtype=torch.uint8)
    sd["flag"] = torch.tensor([True, False, True])
    base = torch.randn(4, 6, generator=g)
    sd["transposed"] = base.t()  # shares base's storage, stride (1, 6)
    big = torch.randn(6, 9, generator=g)
    sd["strided"] = big[1::2, 2::3]  # offset and strides
    shared = torch.randn(10, generator=g)
    sd["shared_a"] = shared[:6]
    sd["shared_b"] = shared[4:].view(2, 3)  # offset 4 into the same storage
    sd["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)  # stride 0
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["num_batches_tracked"] = torch.tensor(17, dtype=torch.int64)
    return sd


def small_dicts():
    g = torch.Generator().manual_seed(1)
    a = collections.OrderedDict([("conv.weight", torch.randn(2, 1, 3, 3, generator=g)), ("conv.bias", torch.randn(2, generator=g)), ("fc.weight", torch.randn(4, 2, generator=g))])
    b = collections.OrderedDict((k, v + 1) for k, v in a.items())
    return a, b


def sgd_state(params):
    ps = [torch.nn.Parameter(p.detach().clone().float()) for p in params if p.is_floating_point()]
    opt = torch.optim.SGD(ps, lr=0.1, momentum=0.9)
    for p in ps:
        p.grad = torch.ones_like(p)
    opt.step()
    return opt.state_dict()


# ---------------------------------------------------------------------------------------------
# Hostile and malformed files
# ---------------------------------------------------------------------------------------------

class Payload:
    """An object whose unpickling calls fn(*args)."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class FakeStorage:
    def __init__(self, key, numel, cls=torch.FloatStorage):
        self.key, self.numel, self.cls = key, numel, cls


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


def crafted_pickle(obj):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)
    p.persistent_id = lambda o: ("storage", o.cls, o.key, "cpu", o.numel) if isinstance(o, FakeStorage) else None
    p.dump(obj)
    return buf.getvalue()


def write_zip(path, data_pkl, storages):
    """A zip laid out as torch.save's: <prefix>/data.pkl, <prefix>/data/<key>, <prefix>/version (all stored)."""
    prefix = os.path.splitext(os.path.basename(path))[0]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", data_pkl)
        for key, data in storages.items():
            z.writestr(f"{prefix}/data/{key}", data)
        z.writestr(f"{prefix}/version", "3\n")


def payloads(marker):
    """name -> (global the file names, payload object creating `marker`)."""
    return {
        "os_system": ("posix.system", Payload(os.system, (f"touch '{marker('os_system')}'",))),
        "builtins_eval": ("builtins.eval", Payload(eval, (f"open({marker('builtins_eval')!r}, 'w').close()",))),
        "subprocess_popen": ("subprocess.Popen", Payload(subprocess.Popen, (["touch", marker("subprocess_popen")],))),
        "builtins_exec": ("builtins.exec", Payload(exec, (f"open({marker('builtins_exec')!r}, 'w').close()",))),
    }


def write_hostile(out):
    hdir = os.path.join(out, "hostile")
    pdir = os.path.join(out, "proof")
    os.makedirs(hdir, exist_ok=True)
    os.makedirs(pdir, exist_ok=True)
    hmark = lambda n: os.path.join(hdir, f"MARKER-{n}")
    pmark = lambda n: os.path.join(pdir, f"MARKER-{n}")
    w = torch.ones(2)
    cases = {}
    for name, (glob, payload) in payloads(hmark).items():
        for fmt in ("zip", "legacy"):
            f = os.path.join(hdir, f"{name}.{fmt}.pth")
            torch.save({"w": w, "x": payload}, f, _use_new_zipfile_serialization=(fmt == "zip"))
            cases[f"{name}.{fmt}"] = {"file": f, "global": glob, "marker": hmark(name)}
    # The same payloads aimed at the proof markers, loaded by torch with weights_only=False: they do run.
    proven = {}
    for name, (glob, payload) in payloads(pmark).items():
        f = os.path.join(pdir, f"{name}.pth")
        torch.save({"w": w, "x": payload}, f)
        obj = torch.load(f, weights_only=False)
        if isinstance(obj["x"], subprocess.Popen):
            obj["x"].wait()
        proven[name] = os.path.exists(pmark(name))
    # A global named for attribute access (the first step of many exploits).
    f = os.path.join(hdir, "getattr.zip.pth")
    torch.save({"w": w, "x": Payload(getattr, ("abc", "upper"))}, f)
    cases["getattr.zip"] = {"file": f, "global": "builtins.getattr", "marker": None}
    # A whole model object (torch.save(model)): its class is a global.
    f = os.path.join(hdir, "module.zip.pth")
    torch.save(torch.nn.Linear(2, 2), f)
    cases["module.zip"] = {"file": f, "global": "torch.nn.modules.linear.Linear", "marker": None}

    # Malformed: a string that declares 4 GB.
    f = os.path.join(hdir, "huge_length.zip.pth")
    write_zip(f, b"\x80\x02X\xf0\xff\xff\xffabc.", {})
    cases["huge_length.zip"] = {"file": f, "global": None, "marker": None, "error": "BINUNICODE needs 4294967280 bytes"}
    # A storage that declares more elements than its entry holds.
    st = FakeStorage("0", 10**9)
    f = os.path.join(hdir, "numel_too_big.zip.pth")
    write_zip(f, crafted_pickle({"w": FakeTensor(st, 0, (4,), (1,))}), {"0": b"\0" * 16})
    cases["numel_too_big.zip"] = {"file": f, "global": None, "marker": None, "error": "declares 1000000000 float32 elements"}
    # A view that reaches past its storage's end.
    st = FakeStorage("0", 4)
    f = os.path.join(hdir, "view_past_end.zip.pth")
    write_zip(f, crafted_pickle({"w": FakeTensor(st, 2, (2, 2), (2, 1))}), {"0": b"\0" * 16})
    cases["view_past_end.zip"] = {"file": f, "global": None, "marker": None, "error": "reaches element 5 of storage \"0\", which holds 4 float32 elements"}
    # A storage entry the pickle names but the archive lacks.
    st = FakeStorage("7", 4)
    f = os.path.join(hdir, "missing_storage.zip.pth")
    write_zip(f, crafted_pickle({"w": FakeTensor(st, 0, (4,), (1,))}), {})
    cases["missing_storage.zip"] = {"file": f, "global": None, "marker": None, "error": "has no entry"}
    # Stride-0 views that would expand a tiny file into gigabytes.
    st = FakeStorage("0", 1)
    f = os.path.join(hdir, "expand_bomb.zip.pth")
    write_zip(f, crafted_pickle({f"w{i}": FakeTensor(st, 0, (1 << 20, 1 << 10), (0, 0)) for i in range(4)}), {"0": b"\0" * 4})
    cases["expand_bomb.zip"] = {"file": f, "global": None, "marker": None, "error": "times the file's"}
    # 200,000 nested lists (built with APPEND, no recursion needed to write them).
    n = 200_000
    f = os.path.join(hdir, "deep_nesting.zip.pth")
    write_zip(f, b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".", {})
    cases["deep_nesting.zip"] = {"file": f, "global": None, "marker": None, "error": "not a state_dict"}
    # A legacy file whose storage data are cut short.
    f = os.path.join(hdir, "truncated.legacy.pth")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(1000)}, buf, _use_new_zipfile_serialization=False)
    with open(f, "wb") as fh:
        fh.write(buf.getvalue()[:-100])
    cases["truncated.legacy"] = {"file": f, "global": None, "marker": None, "error": "truncated"}

    # Paths relative to the output directory, so that it can be moved.
    rel = lambda p: p and os.path.relpath(p, out)
    cases = {k: {**c, "file": rel(c["file"]), "marker": rel(c["marker"])} for k, c in cases.items()}
    with open(os.path.join(out, "hostile.json"), "w") as fh:
        json.dump({"cases": cases, "proven": proven}, fh, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", help="a state_dict as safetensors (for the weights.* files)")
    args = ap.parse_args(argv)
    out = args.out
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    sd = dtype_state_dict()
    torch.save(sd, os.path.join(out, "dtypes.zip.pth"))
    torch.save(sd, os.path.join(out, "dtypes.legacy.pth"), _use_new_zipfile_serialization=False)
    write_expected(os.path.join(out, "expected"), sd)

    a, b = small_dicts()
    write_expected(os.path.join(out, "small", "a"), a)
    write_expected(os.path.join(out, "small", "b"), b)
    torch.save({"epoch": 3, "arch": "tiny", "state_dict": a, "optimizer": sgd_state(a.values()),
                "args": argparse.Namespace(lr=0.1, model="tiny", layers=[1, 2]), "metric": np.float64(0.75),
                "note": b"bytes \x00\xff"}, os.path.join(out, "checkpoint.zip.pth"))
    torch.save({"state_dict": a, "state_dict_ema": b}, os.path.join(out, "ema.zip.pth"))
    torch.save({"first": a, "second": b}, os.path.join(out, "ambiguous.zip.pth"))
    torch.save(collections.OrderedDict(("module." + k, v) for k, v in a.items()), os.path.join(out, "module.legacy.pth"),
               _use_new_zipfile_serialization=False)
    torch.save(a["conv.bias"], os.path.join(out, "tensor.zip.pth"))

    write_hostile(out)

    if args.weights:
        ref = load_reference_module()
        tv = ref.read_safetensors(args.weights)
        torch.save(tv, os.path.join(out, "weights.zip.pth"))
        torch.save(tv, os.path.join(out, "weights.legacy.pth"), _use_new_zipfile_serialization=False)
        torch.save({"epoch": 9, "state_dict": tv, "optimizer": sgd_state(list(tv.values())[:8]),
                    "args": argparse.Namespace(model="efficientnet_b0")}, os.path.join(out, "weights.nested.pth"),
                   _use_new_zipfile_serialization=False)
        torch.save(collections.OrderedDict(("module." + k, v) for k, v in tv.items()), os.path.join(out, "weights.module.zip.pth"))
    print(json.dumps({"out": out, "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
