#!/usr/bin/python3
"""Writes the project's test fixtures: small random-weight Mamba and MemMamba
models in every checkpoint form the converter reads, with golden outputs of
the float64 reference (memmamba.py).

    /usr/bin/python3 testdata/reference/make_fixtures.py [--out testdata/models] [--only NAME]

Each fixture goes to testdata/models/<name>/:

    config.json, weights (safetensors / pytorch_model.bin / model.pt / shards
    + index), tokenizer.json (when the model has a BPE tokenizer)
    golden/logits.npy   float32 [T, V]: reference logits for every position
    golden/golden.json  {"text", "tokens", "trace", "counts", "state", ...}

The trace holds, per layer and token, the Note Block's decisions (importance,
trigger, retrieval, note taken / skipped / dropped / evicted, the pool's
positions in slot order after the token, cross-layer retrieval). The state
is the recurrent state after the last token (SPEC.md's list).

Weights are drawn from fixed seeds so that the Note Block takes every branch
and no importance or trigger lies within 1e-3 of its threshold (and no two
noted importances of a layer lie within 1e-5 of each other, so priority
eviction decisions are stable in float32); a draw that fails is re-drawn
with the next seed. Running the script twice gives identical files.

Before writing, every fixture is run twice, in step mode (the definition)
and in sequence mode (masks); they must agree, or the script fails.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shutil
import struct
import sys
import zipfile
from typing import Dict, List

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memmamba import Config, MemMambaForCausalLM, MemoryConfig  # noqa: E402
import bpe  # noqa: E402

MARGIN = 1e-3  # SPEC: no I_t or G_t within 1e-3 of tau
SCORE_GAP = 1e-5  # noted importances of one layer differ by more than this
T = 48  # tokens per fixture

TEXT = ("In the beginning the state space was small, and the notes were few. "
        "Then the model wrote down what mattered, and read it back when the "
        "trigger fired: 0123456789.")


# ------------------------------------------------------------- fixtures --

def fixtures() -> List[dict]:
    base = dict(hidden_size=64, state_size=8, conv_kernel=4, expand=2, layer_norm_epsilon=1e-5)
    mem = dict(pool_size=4, summary_dim=32, attn_dim=32, n_heads=4, tau_note=0.5, tau_retrieve=0.3)
    return [
        dict(name="mamba-tiny", seed=1, form="safetensors", dtype="f32", tokenizer="bytes", onnx=True,
             config=dict(base, vocab_size=256, num_hidden_layers=2, model_type="mamba"),
             about="plain Mamba, Hugging Face names and config, tied embeddings, safetensors; the same "
                   "weights as the initializers of a torch.onnx.export (model.onnx)"),
        dict(name="mamba-bias-untied", seed=2, form="torch-bin", dtype="f32", tokenizer="bpe",
             config=dict(base, vocab_size=320, num_hidden_layers=2, model_type="mamba", use_bias=True,
                         tie_word_embeddings=False),
             about="plain Mamba with in/out projection biases, untied lm_head, pytorch_model.bin, "
                   "byte-level BPE tokenizer.json"),
        dict(name="mamba-ssm", seed=3, form="mamba-ssm", dtype="f32", tokenizer="bytes",
             config=dict(base, vocab_size=256, num_hidden_layers=2, model_type="mamba"),
             about="plain Mamba in mamba_ssm style: backbone.embedding.weight, d_model/n_layer/ssm_cfg, "
                   "{'model': state_dict} with a module. prefix, model.pt"),
        dict(name="memmamba-priority", seed=4, form="safetensors", dtype="f32", tokenizer="bytes",
             config=dict(base, vocab_size=256, num_hidden_layers=4, model_type="memmamba",
                         memory=dict(mem, cross_layer_every=2, eviction="priority")),
             about="MemMamba, priority eviction, pool of 4, cross-layer attention every 2 layers"),
        dict(name="memmamba-fifo", seed=5, form="sharded", dtype="f32", tokenizer="bytes",
             config=dict(base, vocab_size=256, num_hidden_layers=3, model_type="memmamba",
                         memory=dict(mem, pool_size=6, cross_layer_every=1, eviction="fifo")),
             about="MemMamba, fifo eviction, cross-layer attention on every layer, sharded safetensors "
                   "with model.safetensors.index.json"),
        dict(name="mamba-fp16", seed=6, form="safetensors", dtype="f16", tokenizer="bytes",
             config=dict(base, vocab_size=256, num_hidden_layers=2, model_type="mamba"),
             about="plain Mamba stored in fp16 safetensors"),
        dict(name="memmamba-bf16", seed=7, form="safetensors", dtype="bf16", tokenizer="bytes",
             config=dict(base, vocab_size=256, num_hidden_layers=2, model_type="memmamba", use_bias=True,
                         memory=dict(mem, cross_layer_every=2, eviction="priority")),
             about="MemMamba with projection biases stored in bf16 safetensors"),
        # Last, so that the fixtures above keep their draws.
        dict(name="falcon-mamba-tiny", seed=8, form="safetensors", dtype="f32", tokenizer="bytes",
             config=dict(base, vocab_size=256, num_hidden_layers=2, model_type="falcon_mamba", mixer_rms_eps=1e-6),
             about="Falcon-Mamba (FalconMambaForCausalLM): plain Mamba with weightless RMSNorms (eps "
                   "mixer_rms_eps 1e-6, layer norms 1e-5 as in Falcon-Mamba-7B) on delta, B and C after x_proj"),
    ]


# --------------------------------------------------------------- weights --

def draw(model: MemMambaForCausalLM, seed: int):
    """Random weights with useful scales: every path of the forward pass
    contributes, and dt lands in Mamba's usual range."""
    g = torch.Generator().manual_seed(seed)
    c = model.config
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=g, dtype=p.dtype) * 15 + 1))
            elif name.endswith(".D"):
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 2 - 0.5)
            elif name.endswith("dt_proj.bias"):
                dt = torch.exp(torch.rand(p.shape, generator=g, dtype=p.dtype) * (math.log(0.1) - math.log(1e-3))
                               + math.log(1e-3))
                p.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            elif name.endswith("norm.weight") or name.endswith("norm_f.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            elif name.endswith("embeddings.weight"):
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
            elif p.dim() >= 2:
                fan_in = p.shape[-1] * (p.shape[1] if p.dim() == 3 else 1)
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) / math.sqrt(fan_in))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for layer in model.backbone.layers:
            if layer.note is not None:
                # Scorers sharp enough that importances spread across tau.
                layer.note.score.fc2.weight.mul_(4)
                layer.note.trigger.weight.mul_(4)


def logit(p):
    return math.log(p / (1 - p))


def calibrate(model: MemMambaForCausalLM, tokens: torch.Tensor):
    """Centres each layer's importance and trigger logits on their
    thresholds, so both branches are taken about half the time. Layer by
    layer, since each layer's bias moves the inputs of the layers above."""
    mc = model.config.memory
    for l, layer in enumerate(model.backbone.layers):
        nb = layer.note
        with torch.no_grad():
            _, det = model(tokens, return_details=True)
            imp, trig = det[l]["importance"], det[l]["trigger"]
            zi = torch.log(imp / (1 - imp))
            zg = torch.log(trig / (1 - trig))
            nb.score.fc2.bias.add_(logit(mc.tau_note) - float(zi.median()) + 0.3)
            nb.trigger.bias.add_(logit(mc.tau_retrieve) - float(zg.median()) + 0.5)


def cast(model: MemMambaForCausalLM, dtype: str):
    """Rounds every weight to the storage dtype (then back to float64): the
    golden outputs are those of the weights as stored."""
    td = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(td).to(torch.float64))


# ----------------------------------------------------------------- check --

def run_both(model: MemMambaForCausalLM, tokens: torch.Tensor):
    """Step mode (the definition) and sequence mode; returns step-mode
    logits, trace, state and the largest disagreement."""
    c = model.config
    state = model.new_state()
    trace: List[List[dict]] = [[] for _ in range(c.num_hidden_layers)]
    logits = torch.stack([model.step(int(t), state, trace) for t in tokens])
    with torch.no_grad():
        seq_logits, det = model(tokens, return_details=True)
    err = float((seq_logits - logits).abs().max())
    if c.model_type == "memmamba":
        for l, d in enumerate(det):
            tr = trace[l]
            for t in range(len(tokens)):
                pool_seq = set(torch.nonzero(d["mask"][t])[:, 0].tolist())
                if pool_seq != set(tr[t]["pool"]) or bool(d["retrieved"][t]) != tr[t]["retrieved"]:
                    raise AssertionError(f"layer {l} token {t}: sequence mode disagrees with step mode "
                                         f"(pool {sorted(pool_seq)} vs {tr[t]['pool']})")
                err = max(err, abs(float(d["importance"][t]) - tr[t]["importance"]))
    return logits, trace, state, err


def counts(trace) -> Dict[str, int]:
    n = {"noted": 0, "skipped": 0, "dropped": 0, "evicted": 0, "retrieved": 0, "not_retrieved": 0,
         "cross_layer": 0}
    for layer in trace:
        for e in layer:
            n[{"note": "noted", "skip": "skipped", "drop": "dropped", "evict": "evicted"}[e["note"]]] += 1
            n["retrieved" if e["retrieved"] else "not_retrieved"] += 1
            n["cross_layer"] += e["cross_layer"]
    return n


def problems(c: Config, trace) -> List[str]:
    """Reasons to re-draw: a score too near its threshold, two noted scores
    too close, or a branch never taken."""
    out = []
    mc = c.memory
    for l, layer in enumerate(trace):
        noted = []
        for e in layer:
            if abs(e["importance"] - mc.tau_note) <= MARGIN:
                out.append(f"layer {l} token {e['pos']}: importance {e['importance']:.6f} near tau_note")
            if abs(e["trigger"] - mc.tau_retrieve) <= MARGIN:
                out.append(f"layer {l} token {e['pos']}: trigger {e['trigger']:.6f} near tau_retrieve")
            if e["importance"] > mc.tau_note:
                noted.append(e["importance"])
        noted.sort()
        for a, b in zip(noted, noted[1:]):
            if b - a <= SCORE_GAP:
                out.append(f"layer {l}: noted importances {a:.7f} and {b:.7f} too close")
    n = counts(trace)
    need = ["noted", "skipped", "evicted", "retrieved", "not_retrieved"]
    if mc.eviction == "priority":
        need.append("dropped")  # fifo never drops a note (SPEC.md)
    if mc.cross_layer_every > 0:
        need.append("cross_layer")
    out += [f"no {k} in the trace" for k in need if n[k] == 0]
    return out


# ---------------------------------------------------------------- output --

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
             torch.int64: "I64"}


def tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path: str, sd: Dict[str, torch.Tensor], metadata=None):
    """The safetensors layout (8-byte LE header length, JSON header, data),
    written by hand: Debian has no safetensors package."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(sd):
        b = tensor_bytes(sd[name])
        header[name] = {"dtype": ST_DTYPES[sd[name].dtype], "shape": list(sd[name].shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def torch_save(obj, path: str):
    """torch.save, made byte-for-byte reproducible: the zip's member times
    are fixed."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            zout.writestr(zi, data)


def export_onnx(model: MemMambaForCausalLM, path: str):
    """torch.onnx.export of the sequence mode on 4 tokens, weights as
    initializers under their state_dict names (no constant folding)."""
    import copy
    import warnings
    m = copy.deepcopy(model).float().eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.tensor([1, 2, 3, 4]),), path, do_constant_folding=False, opset_version=14,
                          input_names=["tokens"], output_names=["logits"])


def hf_config(c: Config, tokenizer: str) -> dict:
    arch = {"mamba": "MambaForCausalLM", "falcon_mamba": "FalconMambaForCausalLM"}.get(c.model_type,
                                                                                       "MemMambaForCausalLM")
    d = {"architectures": [arch],
         "model_type": c.model_type,
         "vocab_size": c.vocab_size, "hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
         "state_size": c.state_size, "conv_kernel": c.conv_kernel, "expand": 2,
         "intermediate_size": c.intermediate_size, "time_step_rank": c.time_step_rank,
         "layer_norm_epsilon": c.layer_norm_epsilon, "use_bias": c.use_bias, "use_conv_bias": c.use_conv_bias,
         "tie_word_embeddings": c.tie_word_embeddings,
         # keys real checkpoints carry that SPEC.md ignores
         "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, "hidden_act": "silu",
         "initializer_range": 0.1, "residual_in_fp32": True, "rescale_prenorm_residual": False,
         "time_step_init_scheme": "random", "time_step_max": 0.1, "time_step_min": 0.001,
         "time_step_scale": 1.0, "time_step_floor": 1e-4, "torch_dtype": "float32", "use_cache": True}
    if c.memory is not None:
        d["memory"] = vars(c.memory).copy()
    if c.model_type == "falcon_mamba":
        d["mixer_rms_eps"] = c.mixer_rms_eps
    return d


def mamba_ssm_config(c: Config) -> dict:
    return {"d_model": c.hidden_size, "n_layer": c.num_hidden_layers, "vocab_size": c.vocab_size,
            "ssm_cfg": {"d_state": c.state_size, "d_conv": c.conv_kernel, "expand": 2},
            "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
            "pad_vocab_size_multiple": 8, "tie_embeddings": c.tie_word_embeddings}


def write_fixture(out: str, fx: dict, model: MemMambaForCausalLM, text: str, tokens, logits, trace, state,
                  tok_json):
    c = model.config
    d = os.path.join(out, fx["name"])
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "golden"))
    td = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[fx["dtype"]]
    sd = {k: v.to(td) for k, v in model.state_dict().items()}
    form = fx["form"]
    cfg = mamba_ssm_config(c) if form == "mamba-ssm" else hf_config(c, fx["tokenizer"])
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    if form == "safetensors":
        write_safetensors(os.path.join(d, "model.safetensors"), sd, {"format": "pt"})
    elif form == "torch-bin":
        torch_save(sd, os.path.join(d, "pytorch_model.bin"))
    elif form == "mamba-ssm":
        sd = {("module." + k.replace("backbone.embeddings.", "backbone.embedding.")): v for k, v in sd.items()}
        torch_save({"model": sd, "epoch": 3, "args": {"lr": 1e-3}}, os.path.join(d, "model.pt"))
    elif form == "sharded":
        names = sorted(sd)
        shards = [names[i::3] for i in range(3)]
        weight_map = {}
        total = 0
        for i, part in enumerate(shards):
            fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            write_safetensors(os.path.join(d, fn), {k: sd[k] for k in part}, {"format": "pt"})
            for k in part:
                weight_map[k] = fn
                total += sd[k].numel() * sd[k].element_size()
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f,
                      indent=2)
            f.write("\n")
    else:
        raise ValueError(form)
    if fx.get("onnx"):
        export_onnx(model, os.path.join(d, "model.onnx"))
    if tok_json is not None:
        with open(os.path.join(d, "tokenizer.json"), "w") as f:
            json.dump(tok_json, f, indent=2, ensure_ascii=False)
            f.write("\n")
    np.save(os.path.join(d, "golden", "logits.npy"), logits.to(torch.float32).numpy())
    golden = {
        "name": fx["name"], "about": fx["about"], "storage_dtype": fx["dtype"], "form": form,
        "tokenizer": fx["tokenizer"], "text": text, "tokens": [int(t) for t in tokens],
        "logits": {"file": "logits.npy", "shape": list(logits.shape), "dtype": "float32"},
        "greedy": [int(i) for i in logits.argmax(-1)],
        "config": c.to_dict(),
        "counts": counts(trace) if c.model_type == "memmamba" else None,
        "trace": trace if c.model_type == "memmamba" else None,
        "state": state.to_json(),
    }
    with open(os.path.join(d, "golden", "golden.json"), "w") as f:
        json.dump(golden, f, indent=1, sort_keys=True)
        f.write("\n")


def build(fx: dict, log):
    cfg = dict(fx["config"])
    if "memory" in cfg:
        cfg["memory"] = MemoryConfig(**cfg["memory"])
    c = Config(**cfg)
    tok_json, encode = None, lambda s: list(s.encode())
    if fx["tokenizer"] == "bpe":
        tok_json = bpe.train_tokenizer_json(bpe.CORPUS, n_merges=c.vocab_size - 256 - 8)
        encode = bpe.Encoder(tok_json).encode
    tokens = encode(TEXT)[:T]
    assert len(tokens) == T, f"{fx['name']}: the text encodes to {len(tokens)} tokens, want >= {T}"
    tokens = torch.tensor(tokens)
    text = bpe.decode(tok_json, tokens.tolist()) if tok_json else bytes(tokens.tolist()).decode()
    for attempt in range(200):
        torch.manual_seed(fx["seed"] * 1000 + attempt)
        model = MemMambaForCausalLM(c).double()
        draw(model, fx["seed"] * 1000 + attempt)
        cast(model, fx["dtype"])
        if c.model_type == "memmamba":
            calibrate(model, tokens)
            cast(model, fx["dtype"])
        logits, trace, state, err = run_both(model, tokens)
        bad = problems(c, trace) if c.model_type == "memmamba" else []
        if not bad:
            break
        log(f"  {fx['name']}: draw {attempt} rejected: {bad[0]}" + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""))
    else:
        raise RuntimeError(f"{fx['name']}: no acceptable draw in 200 attempts")
    if err > 1e-9 * max(1.0, float(logits.abs().max())):
        raise AssertionError(f"{fx['name']}: sequence mode differs from step mode by {err:g}")
    return model, text, tokens, logits, trace, state, tok_json, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "models"))
    ap.add_argument("--only", action="append", help="only this fixture (repeatable)")
    ap.add_argument("--check", action="store_true",
                    help="write to a scratch folder and fail unless the files equal those in --out")
    args = ap.parse_args()
    torch.set_num_threads(1)  # bit-reproducible reductions
    if args.check:
        import filecmp
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            gen(tmp, args.only)
            bad = []
            for root, _, files in os.walk(tmp):
                for fn in files:
                    rel = os.path.relpath(os.path.join(root, fn), tmp)
                    ref = os.path.join(args.out, rel)
                    if not os.path.exists(ref) or not filecmp.cmp(os.path.join(root, fn), ref, shallow=False):
                        bad.append(rel)
            if bad:
                sys.exit(f"fixtures differ from the generator's output: {', '.join(bad)} (run `make fixtures`)")
            print("fixtures are up to date")
        return
    gen(args.out, args.only)


def gen(out, only):
    for fx in fixtures():
        if only and fx["name"] not in only:
            continue
        model, text, tokens, logits, trace, state, tok_json, err = build(fx, print)
        write_fixture(out, fx, model, text, tokens, logits, trace, state, tok_json)
        line = f"{fx['name']:20s} step == sequence (max |diff| {err:.1e})"
        if model.config.model_type == "memmamba":
            n = counts(trace)
            line += (f"; notes taken {n['noted']}, skipped {n['skipped']}, dropped {n['dropped']}, "
                     f"evicted {n['evicted']}; retrievals {n['retrieved']} fired, {n['not_retrieved']} not; "
                     f"cross-layer {n['cross_layer']}")
        print(line)


if __name__ == "__main__":
    main()
