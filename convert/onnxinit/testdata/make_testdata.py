"""Makes the ONNX test files of package onnxinit. Run with /usr/bin/python3
(Debian's torch 1.13 and python3-onnx) from this directory:

    python3 make_testdata.py

tiny.onnx: torch.onnx.export of a tiny module (Embedding, Linear, Conv1d,
bare Parameters) with export_params=True and do_constant_folding=False, so
the initializers are the state_dict. Then, with the onnx package, extra
initializers are appended that cover every storage form the reader supports:
float16/bfloat16/double/int64 raw_data, float_data, double_data, int64_data,
float16 and bfloat16 in int32_data. tiny_folded.onnx is the same module
exported with constant folding on, where torch renames transposed weights
(onnx::MatMul_N). external.onnx has one initializer stored as external data.
expected.json lists every initializer of the three files with its shape,
ONNX data type and values (as float64), computed here with numpy.
"""
import json

import numpy as np
import onnx
import torch
from onnx import TensorProto, numpy_helper

class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 8)
        self.lin = torch.nn.Linear(8, 4)
        self.conv = torch.nn.Conv1d(4, 4, 3, groups=4, padding=2)
        self.A_log = torch.nn.Parameter(torch.randn(4, 2))
        self.D = torch.nn.Parameter(torch.randn(4))

    def forward(self, ids):
        x = self.lin(self.emb(ids))  # (B, T, 4): MatMul with the weight
        y = self.conv(x.transpose(1, 2))[..., : ids.shape[1]]
        return y.transpose(1, 2) * self.D + (-torch.exp(self.A_log)).sum(-1)


def export(path, fold):
    torch.manual_seed(0)
    m = Tiny().eval()
    ids = torch.tensor([[1, 2, 3]])
    torch.onnx.export(m, (ids,), path, export_params=True, do_constant_folding=fold,
                      input_names=["ids"], output_names=["out"], opset_version=13)


def bf16_bits(a):
    b = np.asarray(a, dtype=np.float32).view(np.uint32)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def extras():
    out = []
    f16 = (np.arange(6, dtype=np.float32) / 4 - 0.5).reshape(2, 3)
    out.append(numpy_helper.from_array(f16.astype(np.float16), "extra.f16_raw"))
    t = TensorProto(name="extra.f16_int32", data_type=TensorProto.FLOAT16, dims=[3])
    t.int32_data.extend(int(v) for v in np.array([1.5, -2, 65504], np.float16).view(np.uint16))
    out.append(t)
    bf = np.array([[1.0, -0.5], [3.25, 1e10]], np.float32)
    t = TensorProto(name="extra.bf16_raw", data_type=TensorProto.BFLOAT16, dims=[2, 2])
    t.raw_data = bf16_bits(bf).tobytes()
    out.append(t)
    t = TensorProto(name="extra.bf16_int32", data_type=TensorProto.BFLOAT16, dims=[2])
    t.int32_data.extend(int(v) for v in bf16_bits([2.0, -7.0]))
    out.append(t)
    out.append(numpy_helper.from_array(np.array([1.0 / 3, -1e-3, 2.5]), "extra.f64_raw"))
    t = TensorProto(name="extra.f64_data", data_type=TensorProto.DOUBLE, dims=[2])
    t.double_data.extend([0.125, -8.0])
    out.append(t)
    out.append(numpy_helper.from_array(np.array([[-3, 0], [7, 1 << 40]], np.int64), "extra.i64_raw"))
    t = TensorProto(name="extra.i64_data", data_type=TensorProto.INT64, dims=[3])
    t.int64_data.extend([5, -6, 7])
    out.append(t)
    t = TensorProto(name="extra.f32_data", data_type=TensorProto.FLOAT, dims=[2, 1, 2])
    t.float_data.extend([0.5, -1.25, 3.0, 4.0])
    out.append(t)
    t = TensorProto(name="extra.scalar", data_type=TensorProto.FLOAT, dims=[])
    t.float_data.append(2.0)
    out.append(t)
    return out


def describe(path):
    m = onnx.load(path, load_external_data=False)
    ts = {}
    for t in m.graph.initializer:
        e = {"dtype": t.data_type, "shape": list(t.dims)}
        if t.data_location != TensorProto.EXTERNAL:
            if t.data_type == TensorProto.BFLOAT16:
                bits = np.frombuffer(t.raw_data, np.uint16) if t.raw_data else np.array(t.int32_data, np.uint16)
                v = (bits.astype(np.uint32) << 16).view(np.float32)
            else:
                v = numpy_helper.to_array(t)
            e["values"] = [float(x) for x in np.asarray(v, np.float64).ravel()]
        ts[t.name] = e
    return ts


export("tiny.onnx", False)
m = onnx.load("tiny.onnx")
m.graph.initializer.extend(extras())
m.metadata_props.add(key="purpose", value="onnxinit test")
onnx.checker.check_model(m)
onnx.save(m, "tiny.onnx")

export("tiny_folded.onnx", True)

m = onnx.load("tiny.onnx")
keep = [t for t in m.graph.initializer if t.name == "D"]
t = keep[0]
t.ClearField("raw_data")
t.data_location = TensorProto.EXTERNAL
t.external_data.add(key="location", value="external.bin")
t.external_data.add(key="offset", value="0")
t.external_data.add(key="length", value="16")
onnx.save(m, "external.onnx")

json.dump({p: describe(p) for p in ["tiny.onnx", "tiny_folded.onnx", "external.onnx"]},
          open("expected.json", "w"), indent=1, sort_keys=True)
