#!/usr/bin/python3
"""Generates the torchzip test files. Run from this directory with
/usr/bin/python3 gen.py (torch 1.13). It writes:

  basic.pt      an OrderedDict state_dict: f32, f16, bf16, f64, i64, i32,
                i8, u8 and bool tensors
  views.pt      tensors sharing one storage: slices with offsets, a row, a
                column (strided) and a transpose (non-contiguous)
  wrapped.pt    {"model": state_dict of an nn.Module (with _metadata),
                "epoch": 3, "name": "run1", "lr": 0.5, "optimizer": {...}}
  module.pt     a DataParallel-style state_dict ("module." prefixes)
  param.pt      tensors saved as nn.Parameter, and one tied twice
  legacy.pt     the legacy format (_use_new_zipfile_serialization=False)
  bigendian.pt  basic.pt with a byteorder entry saying "big"
  evil_*.pt     zips whose data.pkl calls os.system, builtins.eval or
                subprocess.Popen (raw pickle bytes, never executed here)
  deep_*.pt     zips whose data.pkl nests MARKs or tuples deeply
  expected.json every tensor of the good files: dtype, shape, values
"""
import collections
import io
import json
import struct
import zipfile

import torch

torch.manual_seed(0)
expected = {}


def record(fname, obj, prefix=""):
    out = expected.setdefault(fname, {})

    def walk(v, path):
        if isinstance(v, torch.Tensor):
            t = v.detach()
            vals = t.double().flatten().tolist() if t.dtype != torch.bool else t.int().flatten().tolist()
            out[path] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": vals}
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}.{k}" if path else str(k))
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, f"{path}.{i}" if path else str(i))

    walk(obj, prefix)


def save(fname, obj, **kw):
    torch.save(obj, fname, **kw)
    if not kw:
        record(fname, obj)


basic = collections.OrderedDict()
basic["f32"] = torch.randn(2, 3)
basic["f16"] = torch.tensor([0.5, -2.0, 65504.0, 6e-8], dtype=torch.float16)
basic["bf16"] = torch.tensor([[1.0, -3.0], [1e30, 0.0078125]], dtype=torch.bfloat16)
basic["f64"] = torch.tensor([1.5, -1e-3], dtype=torch.float64)
basic["i64"] = torch.tensor([-1, 0, 1 << 40], dtype=torch.int64)
basic["i32"] = torch.tensor([7, -7], dtype=torch.int32)
basic["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
basic["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
basic["mask"] = torch.tensor([True, False, True])
basic["scalar"] = torch.tensor(2.5)
basic["empty"] = torch.zeros(0, 4)
save("basic.pt", basic)

base = torch.arange(24, dtype=torch.float32)
m = base.view(4, 6)
views = {
    "slice": base[5:9],
    "row": m[2],
    "col": m[:, 1],
    "t": m.t(),
    "block": m[1:3, 2:5],
    "whole": m,
}
save("views.pt", views)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Linear(3, 2)
        self.norm = torch.nn.LayerNorm(2)


net = Net()
opt = {"state": {0: {"step": 1, "exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
save("wrapped.pt", {"model": net.state_dict(), "epoch": 3, "name": "run1", "lr": 0.5, "optimizer": opt})

save("module.pt", collections.OrderedDict((f"module.{k}", v) for k, v in net.state_dict().items()))

w = torch.nn.Parameter(torch.randn(2, 2))
save("param.pt", {"w": w, "emb.weight": w, "b": torch.nn.Parameter(torch.zeros(3), requires_grad=False)})

torch.save(basic, "legacy.pt", _use_new_zipfile_serialization=False)

# bigendian.pt: basic.pt with byteorder "big".
with zipfile.ZipFile("basic.pt") as src, zipfile.ZipFile("bigendian.pt", "w", zipfile.ZIP_STORED) as dst:
    prefix = src.namelist()[0].split("/")[0]
    for info in src.infolist():
        dst.writestr(info, src.read(info))
    dst.writestr(prefix + "/byteorder", "big")


def pickle_zip(fname, pkl):
    """Writes a torch.save-shaped zip whose data.pkl is pkl."""
    with zipfile.ZipFile(fname, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


def unicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


# GLOBAL 'os system', REDUCE ('echo pwned',)
pickle_zip("evil_os_system.pt", b"\x80\x02cos\nsystem\n" + b"(" + unicode("echo pwned") + b"tR.")
# protocol-4 STACK_GLOBAL builtins.eval
pickle_zip("evil_eval.pt", b"\x80\x04" + b"\x8c\x08builtins\x8c\x04eval\x93" + b"(" + unicode("1+1") + b"tR.")
# subprocess.Popen hidden inside an otherwise normal dict
pickle_zip("evil_popen.pt", b"\x80\x02}(" + unicode("w") + b"csubprocess\nPopen\n(" + unicode("ls") + b"\x85tRu.")
# torch.storage._load_from_bytes (runs torch.load on embedded bytes)
pickle_zip("evil_load_from_bytes.pt", b"\x80\x02ctorch.storage\n_load_from_bytes\n(C\x00tR.")
# 1000 nested MARKs (the reader allows 256)
pickle_zip("deep_marks.pt", b"\x80\x02" + b"(" * 1000 + b"N.")
# a tuple nested 1000 deep inside a dict (TUPLE1 keeps the stack small;
# the reader allows 100 levels). A stack-depth bomb (70000 pushes) is
# made by the Go test instead of committed.
pickle_zip("deep_tuples.pt", b"\x80\x02}" + unicode("x") + b"N" + b"\x85" * 1000 + b"s.")

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
