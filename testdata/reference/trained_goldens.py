#!/usr/bin/python3
"""Golden outputs of the trained models (issue 7), for the runtime's parity
tests: the same files as a fixture's (make_fixtures.py), written to
testdata/trained/<name>/golden/:

    golden/logits.npy   float32 [T, 256]: the reference's step-mode logits
    golden/golden.json  {"text", "tokens", "trace", "counts", "state", ...}

The reference runs in float64 on the model's float32 weights, as for the
fixtures. Random-weight fixtures are re-drawn until every Note Block
decision is clear of its threshold; trained weights cannot be, so the input
is chosen instead: the first candidate (a window of the held-out text, or a
passkey evaluation prompt with its answer) whose decisions a float32 runtime
must take exactly as the reference does:

* no importance I_t or trigger G_t within 1e-3 of its threshold (SPEC.md);
* where a note meets a full priority pool, the pool's lowest score is more
  than 1e-5 below the next one and more than 1e-5 away from I_t (which
  entry is evicted, and whether the note is dropped, are comparisons of
  scores).

    /usr/bin/python3 testdata/reference/trained_goldens.py [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from make_fixtures import counts, run_both  # noqa: E402
from memmamba import Config, MemMambaForCausalLM  # noqa: E402
from train import read_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINED = os.path.join(HERE, "..", "trained")
MODELS = ["mamba-kjv", "memmamba-kjv", "mamba-passkey", "memmamba-passkey-selective"]
MARGIN = 1e-3
SCORE_GAP = 2e-6
TEXT_BYTES = (128, 96, 64, 48, 40)  # the longest window with clear decisions


def candidates(name: str):
    """(about, text) pairs to try, in order."""
    if name.endswith("-kjv"):
        held = data.load_heldout()
        for n in TEXT_BYTES:
            for k in range(32):
                off = k * 997
                yield (f"held-out text, bytes {off}..{off + n} of heldout.txt",
                       held[off:off + n].decode("utf-8", "replace"))
    else:
        for n in (None, 160, 96, 64):
            for trial in range(data.EVAL_TRIALS):
                c = data.eval_case(256, trial)
                text = c["prompt"] + c["answer"]
                if n is None:
                    yield f"passkey evaluation prompt (length 256, trial {trial}) and its answer", text
                else:
                    yield f"passkey evaluation prompt (length 256, trial {trial}), its first {n} bytes", text[:n]


def unclear(model: MemMambaForCausalLM, trace) -> str:
    """Why a float32 runtime might decide differently, or "" if it cannot."""
    mc = model.config.memory
    if mc is None:
        return ""
    for l, layer in enumerate(trace):
        score = {}
        for t, e in enumerate(layer):
            if abs(e["importance"] - mc.tau_note) <= MARGIN:
                return f"layer {l} token {t}: importance {e['importance']:.6f} near tau_note"
            if abs(e["trigger"] - mc.tau_retrieve) <= MARGIN:
                return f"layer {l} token {t}: trigger {e['trigger']:.6f} near tau_retrieve"
            before = layer[t - 1]["pool"] if t > 0 else []
            if e["importance"] > mc.tau_note and len(before) == mc.pool_size and mc.eviction == "priority":
                s = sorted(score[p] for p in before)
                if len(s) > 1 and s[1] - s[0] <= SCORE_GAP:
                    return f"layer {l} token {t}: the two lowest scores in the pool are {s[0]:.7f} and {s[1]:.7f}"
                if abs(e["importance"] - s[0]) <= SCORE_GAP:
                    return f"layer {l} token {t}: importance {e['importance']:.7f} ties the pool's lowest {s[0]:.7f}"
            score[e["pos"]] = e["importance"]
    return ""


def golden(name: str, out: str) -> str:
    d = os.path.join(TRAINED, name)
    with open(os.path.join(d, "train.json")) as f:
        cfg = json.load(f)["hyperparameters"]["config"]
    model = MemMambaForCausalLM(Config.from_dict(cfg))
    model.load_state_dict(read_safetensors(os.path.join(d, "model.safetensors")))
    model = model.double().eval()
    tried = []
    for about, text in candidates(name):
        tokens = torch.tensor(list(text.encode("utf-8")), dtype=torch.int64)
        with torch.no_grad():
            logits, trace, state, err = run_both(model, tokens)
        why = unclear(model, trace)
        if why:
            tried.append(why)
            continue
        g = os.path.join(out, name, "golden")
        os.makedirs(g, exist_ok=True)
        np.save(os.path.join(g, "logits.npy"), logits.to(torch.float32).numpy())
        mem = model.config.model_type == "memmamba"
        doc = {
            "name": "trained/" + name, "about": f"the trained {name} on its {about}",
            "storage_dtype": "f32", "form": "safetensors", "tokenizer": "bytes",
            "text": text, "tokens": [int(t) for t in tokens],
            "logits": {"file": "logits.npy", "shape": list(logits.shape), "dtype": "float32"},
            "greedy": [int(i) for i in logits.argmax(-1)],
            "config": model.config.to_dict(),
            "counts": counts(trace) if mem else None,
            "trace": trace if mem else None,
            "state": state.to_json(),
        }
        with open(os.path.join(g, "golden.json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        line = f"{name}: {about}; step == sequence (max |diff| {err:.1e})"
        if mem:
            n = counts(trace)
            line += (f"; notes taken {n['noted']}, skipped {n['skipped']}, dropped {n['dropped']}, evicted "
                     f"{n['evicted']}; retrievals {n['retrieved']} fired, {n['not_retrieved']} not; "
                     f"cross-layer {n['cross_layer']}")
        if tried:
            line += f" ({len(tried)} earlier candidates had unclear decisions, the first: {tried[0]})"
        return line
    raise SystemExit(f"{name}: no candidate input with clear Note Block decisions ({tried[0]})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="only this model (repeatable)")
    ap.add_argument("--check", action="store_true",
                    help="write to a scratch folder and fail unless the files equal the committed ones")
    a = ap.parse_args()
    torch.set_num_threads(1)
    names = [n for n in MODELS if os.path.exists(os.path.join(TRAINED, n, "model.safetensors"))
             and (not a.only or n in a.only)]
    if not a.check:
        for n in names:
            print(golden(n, TRAINED))
        return
    with tempfile.TemporaryDirectory() as tmp:
        bad = []
        for n in names:
            golden(n, tmp)
            for fn in ("golden.json", "logits.npy"):
                ref = os.path.join(TRAINED, n, "golden", fn)
                if not os.path.exists(ref) or not filecmp.cmp(os.path.join(tmp, n, "golden", fn), ref, shallow=False):
                    bad.append(f"{n}/golden/{fn}")
        if bad:
            sys.exit(f"trained goldens differ from the generator's output: {', '.join(bad)} "
                     "(run testdata/reference/trained_goldens.py)")
        print("trained goldens are up to date")


if __name__ == "__main__":
    main()
