#!/usr/bin/python3
"""Trains the project's small real models (issue 7) on CPU with PyTorch:
byte-level Mamba and MemMamba, on the King James Bible and on passkey
retrieval (data.py describes both data sets).

    nice -n 19 /usr/bin/python3 testdata/reference/train.py --selftest
    nice -n 19 /usr/bin/python3 testdata/reference/train.py mamba-kjv [--resume] [--max-minutes M]
    nice -n 19 /usr/bin/python3 testdata/reference/train.py --eval mamba-kjv   # reference numbers only

The model is memmamba.py's MemMambaForCausalLM, so parameter names and the
math are the SPEC's. Training does not use its step mode or its sequence
mode (whose scan is a Python loop with autograd on every token); it uses
``fast_forward`` below, the same function of the same weights, batched:

* the mixer's selective scan is ``SelectiveScan``, an autograd Function
  whose forward and backward are each one fused ``addcmul`` per token on a
  (batch, E, N) slab, everything else (decays, inputs, outputs and their
  gradients) computed for the whole sequence at once;
* the Note Block's pools are masks, as in memmamba.py's ``forward``: with
  priority eviction the pool after token t is the top-P notes so far, with
  fifo the last P; the retrievals are masked attention over all summaries.
  The thresholds are not differentiable; the summaries are scaled by I_t
  and the retrieval by G_t (SPEC.md), which is how the scorer and trigger
  learn.

``--selftest`` checks, in float64 on random weights whose Note Blocks take
every branch, that ``fast_forward`` gives the logits of step mode (the
definition) within 1e-4 relative, for Mamba, MemMamba priority and fifo,
on a batch; and that SelectiveScan's gradient equals autograd's.

Each model goes to ``testdata/trained/<name>/``: ``model.safetensors``
(float32, the SPEC's names), ``config.json``, ``train.json`` (seeds,
hyperparameters, parameter count, time, final losses computed by the
reference's sequence mode), ``train_log.txt`` (the loss curve) and
``resume.pt`` (model, optimiser and RNG state; git-ignored).
Training uses one thread (torch.set_num_threads(1)); run it under nice.

Speed on this project's machines: Debian's torch 1.13 links the reference
BLAS (libblas.so.3, about 3 GFLOP/s) and every fresh large tensor costs page
faults (the VM makes them slow: 20 ms for 5 MB). Both are fixed for one
process only, without touching the system, by unpacking two Debian packages
and pointing the loader at them (about 5x faster end to end; the numbers
differ only by float rounding)::

    mkdir -p /tmp/oblas && cd /tmp/oblas && apt-get download libopenblas0-pthread libjemalloc2
    for f in *.deb; do dpkg -x $f root; done
    export LD_LIBRARY_PATH=/tmp/oblas/root/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_NUM_THREADS=1
    export LD_PRELOAD=/tmp/oblas/root/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
    export MALLOC_CONF="retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1"

The committed text models were trained that way, one after the other, each
with ``--max-minutes 17`` or less (a run that hits the limit stops early and
says so in train.json: ``"final": false``). The passkey models were trained
side by side (one core each) for 108 and 96 minutes of wall time, resumed
with changed settings along the way (``--resume --set KEY=JSON``: the
curriculum's grow_at 0.85 -> 0.65, then lr 2e-3 -> 6e-4 for the last
minutes); each change is a ``# step N: resumed with ...`` line in
train_log.txt, and train.json holds the final settings. The selective
passkey MemMamba (memmamba-passkey-selective, importance_loss) was trained
later, alone, with ``--max-minutes 95`` from scratch and no change of
settings (about 27 of its minutes paused while benchmarks ran); the first
memmamba-passkey is in git history (commit b639af0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from memmamba import Config, MemMambaForCausalLM, softplus  # noqa: E402
from make_fixtures import write_safetensors, hf_config, draw, calibrate  # noqa: E402
import data  # noqa: E402

LN2 = math.log(2)
STREAM_BYTES = 16384  # held-out bytes scored as one stream in step mode

# ------------------------------------------------------------ fast mode --


class SelectiveScan(torch.autograd.Function):
    """The mixer's scan, fused: y[t, b, e] = sum_n h_t[b, e, n] C[t, b, n] with
    h_t = exp(dt[t] A) * h_{t-1} + dt[t] x[t] B[t] (h_{-1} = 0).
    dt, x: (T, B, E); A: (E, N); Bm, Cm: (T, B, N). Forward and backward
    loop over t on one (B, E, N) slab at a time (it stays in cache); only
    the states H (T, B, E, N) are kept for the backward pass."""

    @staticmethod
    def forward(ctx, dt, A, Bm, Cm, x):
        T, Bsz, E = dt.shape
        N = A.shape[1]
        dtx = dt * x
        H = dt.new_empty(T, Bsz, E, N)
        Y = dt.new_empty(T, Bsz, E, 1)
        h = dt.new_zeros(Bsz, E, N)
        for t in range(T):
            dA = torch.exp(dt[t, :, :, None] * A)
            torch.addcmul(dtx[t, :, :, None] * Bm[t, :, None, :], dA, h, out=H[t])
            h = H[t]
            torch.bmm(h, Cm[t, :, :, None], out=Y[t])
        ctx.save_for_backward(dt, A, Bm, Cm, x, H)
        return Y[..., 0]

    @staticmethod
    def backward(ctx, gy):
        dt, A, Bm, Cm, x, H = ctx.saved_tensors
        gy = gy.contiguous()
        T, Bsz, E = dt.shape
        dtx = dt * x
        Q = torch.empty_like(H)  # dLoss / d(dt A) at each t
        gB, gC = torch.empty_like(Bm), torch.empty_like(Cm)
        gdtx = torch.empty(T, Bsz, E, 1, dtype=dt.dtype)
        g_next = dA_next = None
        for t in range(T - 1, -1, -1):
            g = gy[t, :, :, None] * Cm[t, :, None, :]  # dLoss/dh_t
            if g_next is not None:
                g.addcmul_(g_next, dA_next)
            torch.bmm(gy[t, :, None, :], H[t], out=gC[t, :, None, :])
            torch.bmm(dtx[t, :, None, :], g, out=gB[t, :, None, :])
            torch.bmm(g, Bm[t, :, :, None], out=gdtx[t])
            dA = torch.exp(dt[t, :, :, None] * A)
            if t > 0:
                torch.mul(g, H[t - 1], out=Q[t])
                Q[t].mul_(dA)
            else:
                Q[t].zero_()
            g_next, dA_next = g, dA
        gdtx = gdtx[..., 0]
        gdt = (Q * A).sum(-1) + gdtx * x
        gA = torch.einsum("tben,tbe->en", Q, dt)
        return gdt, gA, gB, gC, gdtx * dt


def mixer_forward(mx, u):
    """memmamba.MambaMixer.forward for a batch from empty state. u (B, T, d)."""
    Bsz, T, _ = u.shape
    a, z = mx.in_proj(u).chunk(2, dim=-1)  # (B, T, E)
    c = mx.conv1d(a.transpose(1, 2))[..., :T].transpose(1, 2)  # zero history, causal
    a1 = F.silu(c)
    dt, Bm, Cm = mx._ssm_inputs(a1)  # (B,T,E) (B,T,N) (B,T,N)
    A = -torch.exp(mx.A_log)  # (E, N)
    tr = lambda v: v.transpose(0, 1).contiguous()
    y = SelectiveScan.apply(tr(dt), A, tr(Bm), tr(Cm), tr(a1)).transpose(0, 1)  # (B, T, E)
    y = y + mx.D * a1
    return mx.out_proj(y * F.silu(z))


def pool_mask(imp, mc, seg=None):
    """memmamba.MemMambaForCausalLM.pool_mask for a batch: imp (B, T) ->
    M (B, T, T), M[b, t, j] = note j is in the pool after token t.

    seg (B, T), optional: the episode each token belongs to in a packed row.
    The pool at token t then holds only notes of t's own episode, ranked
    among themselves: the pool each episode would have from an empty state,
    as at inference, where every prompt is a fresh session."""
    Bsz, T = imp.shape
    noted = imp > mc.tau_note
    idx = torch.arange(T)
    cand = noted[:, None, :] & (idx[None, :] <= idx[:, None])[None]
    same = None
    if seg is not None:
        same = seg[:, :, None] == seg[:, None, :]  # (b, t, j), symmetric
        cand = cand & same
    if mc.eviction == "fifo":
        beats = (idx[None, :] > idx[:, None])[None]
    else:
        gt = imp[:, None, :] > imp[:, :, None]
        eq = (imp[:, None, :] == imp[:, :, None]) & (idx[None, :] < idx[:, None])[None]
        beats = gt | eq  # (b, j, i): note i ranks above note j
    if same is not None:
        beats = beats & same
    above = torch.cumsum((noted[:, None, :] & beats).to(torch.int32), dim=2)  # (b, j, t)
    return cand & (above.transpose(1, 2) < mc.pool_size)


def attend(att, r, s, mask):
    """memmamba.Attend for a batch. r (B, T, d), s (B, J, S), mask (B, T, J)."""
    Bsz, T, _ = r.shape
    H, hd = att.H, att.A // att.H
    q = att.q_proj(att.norm(r)).view(Bsz, T, H, hd)
    k = att.k_proj(s).view(Bsz, -1, H, hd)
    v = att.v_proj(s).view(Bsz, -1, H, hd)
    sc = torch.einsum("bthd,bjhd->bhtj", q, k) / math.sqrt(hd)
    sc = sc.masked_fill(~mask[:, None], float("-inf"))
    any_ = mask.any(-1)  # (B, T)
    sc = torch.where(any_[:, None, :, None], sc, torch.zeros_like(sc))
    alpha = torch.softmax(sc, dim=-1)
    o = att.o_proj(torch.einsum("bhtj,bjhd->bthd", alpha, v).reshape(Bsz, T, att.A))
    g = torch.sigmoid(att.gate(torch.cat([r, o], dim=-1)))
    return torch.where(any_[..., None], g * o, torch.zeros_like(o))


def fast_forward(model: MemMambaForCausalLM, tokens, return_details=False, aux=None, seg=None):
    """Logits (B, T, V) of a batch of sequences, each from an empty state;
    the same function as model.forward / model.step. If aux is a list, each
    Note Block appends its (importance, trigger), (B, T) each, with their
    gradients (for rate_loss). seg (B, T), optional: episode ids of packed
    rows; each episode's Note Block pools start empty (pool_mask), while the
    mixer's state runs on through the row as it does for Mamba."""
    c = model.config
    Bsz, T = tokens.shape
    x = model.backbone.embeddings(tokens)
    masks, sums, details = [], [], []
    for l, layer in enumerate(model.backbone.layers):
        m = mixer_forward(layer.mixer, layer.norm(x))
        r = x + m
        if layer.note is None:
            x = r
            continue
        nb, mc = layer.note, c.memory
        imp = nb.score(r)  # (B, T)
        prev_m = torch.cat([m.new_zeros(Bsz, 1, m.shape[2]), m[:, :-1]], dim=1)
        trig = torch.sigmoid(nb.trigger(prev_m))[..., 0]
        if aux is not None:
            aux.append((imp, trig))
        M = pool_mask(imp.detach(), mc, seg)
        S = imp[..., None] * nb.summary(r)
        before = torch.cat([M.new_zeros(Bsz, 1, T), M[:, :-1]], dim=1)
        on = (trig > mc.tau_retrieve) & before.any(-1)
        c_tok = trig[..., None] * attend(nb.token_attn, r, S, before & on[..., None])
        masks.append(M)
        sums.append(S)
        c_lay = torch.zeros_like(r)
        if c.has_cross_layer(l):
            lo = max(0, l - mc.cross_layer_every + 1)
            c_lay = attend(nb.layer_attn, r, torch.cat(sums[lo:l + 1], dim=1), torch.cat(masks[lo:l + 1], dim=2))
        x = r + c_tok + c_lay
        if return_details:
            details.append({"importance": imp.detach(), "trigger": trig.detach(), "mask": M, "retrieved": on})
    logits = model._logits(x)
    return (logits, details) if return_details else logits


# -------------------------------------------------------------- selftest --

def selftest():
    torch.manual_seed(0)
    # the scan's gradient against autograd through a plain loop
    T_, B_, E_, N_ = 6, 2, 3, 4
    f64 = dict(dtype=torch.float64, requires_grad=True)
    args = (torch.rand(T_, B_, E_, **f64), -torch.rand(E_, N_, **f64) * 2, torch.randn(T_, B_, N_, **f64),
            torch.randn(T_, B_, N_, **f64), torch.randn(T_, B_, E_, **f64))
    assert torch.autograd.gradcheck(SelectiveScan.apply, args)

    def plain(dt, A, Bm, Cm, x):
        h, ys = torch.zeros(B_, E_, N_, dtype=torch.float64), []
        for t in range(T_):
            h = torch.exp(dt[t, :, :, None] * A) * h + (dt[t] * x[t])[:, :, None] * Bm[t, :, None, :]
            ys.append((h * Cm[t, :, None, :]).sum(-1))
        return torch.stack(ys)
    w = torch.randn(T_, B_, E_, dtype=torch.float64)
    g1 = torch.autograd.grad((SelectiveScan.apply(*args) * w).sum(), args)
    g2 = torch.autograd.grad((plain(*args) * w).sum(), args)
    assert all(torch.allclose(a, b) for a, b in zip(g1, g2))
    print("selftest: SelectiveScan gradient == autograd's")

    base = dict(vocab_size=256, hidden_size=32, state_size=8, conv_kernel=4, layer_norm_epsilon=1e-5)
    mem = dict(pool_size=4, summary_dim=16, attn_dim=16, n_heads=4, tau_note=0.5, tau_retrieve=0.3)
    cases = [
        ("mamba", dict(base, num_hidden_layers=2, model_type="mamba")),
        ("memmamba priority", dict(base, num_hidden_layers=4, model_type="memmamba",
                                   memory=dict(mem, cross_layer_every=2, eviction="priority"))),
        ("memmamba fifo", dict(base, num_hidden_layers=3, model_type="memmamba",
                               memory=dict(mem, pool_size=6, cross_layer_every=1, eviction="fifo"))),
        ("memmamba trained-size", dict(base, hidden_size=64, num_hidden_layers=4, model_type="memmamba",
                                       memory=dict(pool_size=16, summary_dim=64, attn_dim=64, n_heads=4,
                                                   cross_layer_every=2))),
    ]
    T, Bsz = 72, 3
    for i, (what, cd) in enumerate(cases):
        model = MemMambaForCausalLM(Config.from_dict(cd)).double()
        draw(model, 100 + i)
        g = torch.Generator().manual_seed(i)
        toks = torch.randint(0, 256, (Bsz, T), generator=g)
        if model.config.model_type == "memmamba":
            calibrate(model, toks[0])
        with torch.no_grad():
            fast, det = fast_forward(model, toks, return_details=True)
        worst, events = 0.0, 0
        for b in range(Bsz):
            st = model.new_state()
            trace = [[] for _ in range(model.config.num_hidden_layers)]
            ref = torch.stack([model.step(int(t), st, trace) for t in toks[b]])
            err = ((fast[b] - ref).abs() / (1 + ref.abs())).max().item()
            worst = max(worst, err)
            for l, d in enumerate(det):
                for t in range(T):
                    assert set(torch.nonzero(d["mask"][b, t])[:, 0].tolist()) == set(trace[l][t]["pool"])
                    events += trace[l][t]["note"] in ("evict", "drop")
        assert worst < 1e-4, f"{what}: fast_forward differs from step mode by {worst:.3g}"
        print(f"selftest: {what}: fast_forward == step mode on a batch of {Bsz}x{T} "
              f"(max rel err {worst:.2g}, {events} evictions/drops)")
        if model.config.model_type == "memmamba":
            # episode pools: in a row cut into episodes, each episode's masks are
            # those of the episode run alone (pool_mask of its own importances)
            cuts = [0, 17, 40, T]
            seg = torch.zeros(Bsz, T, dtype=torch.int64)
            for c in cuts[1:-1]:
                seg[:, c:] += 1
            with torch.no_grad():
                _, dseg = fast_forward(model, toks, return_details=True, seg=seg)
            for d in dseg:
                for lo, hi in zip(cuts, cuts[1:]):
                    alone = pool_mask(d["importance"][:, lo:hi], model.config.memory)
                    assert torch.equal(d["mask"][:, lo:hi, lo:hi], alone)
                    assert not d["mask"][:, lo:hi, :lo].any() and not d["mask"][:, lo:hi, hi:].any()
            print(f"selftest: {what}: episode pools == each episode's pool alone")
    print("selftest ok")


# ---------------------------------------------------------------- models --

TEXT_BASE = dict(vocab_size=256, state_size=16, conv_kernel=4, layer_norm_epsilon=1e-5, tie_word_embeddings=True)
MEM = dict(pool_size=32, summary_dim=64, attn_dim=64, n_heads=4, tau_note=0.5, tau_retrieve=0.3,
           cross_layer_every=2, eviction="priority")

PRESETS: Dict[str, dict] = {
    # text: same parameter budget (~0.9M); Mamba gets a wider d to match MemMamba's Note Blocks
    "mamba-kjv": dict(task="text", seed=1, config=dict(TEXT_BASE, hidden_size=176, num_hidden_layers=4,
                                                       model_type="mamba"),
                      seq_len=512, batch=8, lr=3e-3, steps=400),
    "memmamba-kjv": dict(task="text", seed=2, config=dict(TEXT_BASE, hidden_size=128, num_hidden_layers=4,
                                                          model_type="memmamba", memory=MEM),
                         seq_len=512, batch=8, lr=3e-3, steps=400),  # the Mamba's steps (it had 140 at first)
    # Passkey: from scratch, the adaptive curriculum (passkey_length), constant lr, as many steps as
    # --max-minutes allows. The first runs (scheduled curriculum, 300 steps, about 10 minutes each:
    # from scratch, fine-tuned from mamba-kjv, and MemMamba) stayed at chance; their logs are in git
    # history (commit 3d1753b).
    "mamba-passkey": dict(task="passkey", seed=3, config=dict(TEXT_BASE, hidden_size=176, num_hidden_layers=4,
                                                              model_type="mamba"),
                          curriculum="adaptive", len_min=128, len_max=2048, tokens_per_batch=2048, lr=2e-3,
                          steps=20000, warmup=50, min_lr_frac=1.0, eval_every=250),
    "memmamba-passkey": dict(task="passkey", seed=4, config=dict(TEXT_BASE, hidden_size=128, num_hidden_layers=4,
                                                                 model_type="memmamba", memory=MEM),
                             curriculum="adaptive", len_min=128, len_max=2048, tokens_per_batch=2048, lr=2e-3,
                             steps=20000, warmup=50, min_lr_frac=1.0, eval_every=250, episode_pools=True),
}
# The selective passkey MemMamba (issue 18): the same model, budget and
# curriculum as memmamba-passkey, plus a target for the Note Blocks'
# importance (importance_loss): the key's digits noted, everything else not.
PRESETS["memmamba-passkey-selective"] = dict(PRESETS["memmamba-passkey"], seed=5, importance_target=True)
COMMON = dict(warmup=50, min_lr_frac=0.1, weight_decay=0.1, betas=(0.9, 0.95), grad_clip=1.0,
              log_every=10, eval_every=100, ckpt_every=50, lm_weight=0.2,
              note_rate=0.1, trigger_rate=0.5, rate_weight=0.1, margin=0.5, margin_weight=2.0)


def rate_loss(model, aux, h):
    """Keeps the Note Blocks alive (a training aid only; the model is the SPEC's).

    Without it the first MemMamba run on text pushed every importance below
    tau_note within 250 steps: the pools stayed empty, the Note Blocks
    contributed nothing and, since the decisions are thresholds, got no
    gradient to come back. A loss on the layer's soft fraction,
    (mean sigma(z) - rate)^2, did not stop that either (run 2: sigma'(z)
    vanishes once every z is far below 0). What holds the rate is a pinball
    (quantile) loss per token, with z the logit of I_t - tau_note (of
    G_t - tau_retrieve): z > 0 is pushed down with weight 1-rate, z < 0 up
    with weight rate, in balance when a fraction `rate` of tokens is above
    the threshold. Alone it piles scores up at the threshold (memmamba-passkey,
    where a float32 runtime would then decide differently from the
    reference), so a hinge margin_weight * relu(margin - |z|), stronger than
    the pinball's pull, pushes scores out of the band |z| < margin.

    Known weakness (memmamba-kjv, run 3): the hinge is a barrier. Every z
    starts just above 0 (init_weights), the hinge lifts them all above the
    band and the pinball cannot pull them back through it, so every token
    stays noted (the pool is then the top-P importances of the whole
    sequence, priority eviction and retrieval on every token): alive and
    clear of the thresholds, but not at note_rate. Annealing the hinge in
    (no hinge before step 100, full at 150) did not fix it: the pinball
    alone brought the rate to 3-14% by step 100, and once the hinge came in
    every layer noted nothing within 10-40 steps, also with the hinge
    weighted like the pinball ((1-rate) above the threshold, rate below).
    The scores share the scorer's bias, and the hinge's pull on it
    follows the majority below the threshold (memmamba-kjv, 400-step runs,
    logs not kept)."""
    mc = model.config.memory
    ln = math.log(mc.tau_note / (1 - mc.tau_note))
    lr_ = math.log(mc.tau_retrieve / (1 - mc.tau_retrieve))
    tot = 0.0
    for imp, trig in aux:
        tot = tot + rate_term(torch.logit(imp, eps=1e-6) - ln, h["note_rate"], h) + \
            rate_term(torch.logit(trig, eps=1e-6) - lr_, h["trigger_rate"], h)
    return h["rate_weight"] * tot / max(1, len(aux))


def rate_term(z, rate, h):
    """rate_loss's term for one decision's logits z (threshold at 0): the
    pinball loss that holds a fraction `rate` above 0, plus the hinge that
    keeps z out of |z| < margin."""
    pin = ((1 - rate) * F.relu(z) + rate * F.relu(-z)).mean()
    return pin + h["margin_weight"] * F.relu(h["margin"] - z.abs()).mean()


def importance_loss(model, aux, h, x):
    """The importance target of memmamba-passkey-selective (a training aid,
    as rate_loss is; the model is the SPEC's).

    In a passkey prompt the only bytes worth a note are the key's digits
    (the filler and the question hold none), so every Note Block's
    importance gets a target: z = logit(I_t) - logit(tau_note) above 0 at
    a digit, below 0 elsewhere, as a binary cross-entropy on z with the
    two classes weighted equally (digits are 1-12% of a row's bytes). This
    replaces rate_loss's importance term (its 10% rate would fight the
    target); the trigger keeps its rate term. Why: the first
    memmamba-passkey noted almost every token, and at 16k the filler's
    notes compete with the key's for the 32 places of a priority pool."""
    mc = model.config.memory
    ln = math.log(mc.tau_note / (1 - mc.tau_note))
    lr_ = math.log(mc.tau_retrieve / (1 - mc.tau_retrieve))
    pos = (x >= ord("0")) & (x <= ord("9"))
    npos, nneg = pos.sum().clamp(min=1), (~pos).sum().clamp(min=1)
    w = torch.where(pos, 0.5 / npos, 0.5 / nneg).float()
    tot = 0.0
    for imp, trig in aux:
        z = torch.logit(imp, eps=1e-6) - ln
        tot = tot + (w * F.binary_cross_entropy_with_logits(z, pos.float(), reduction="none")).sum() + \
            rate_term(torch.logit(trig, eps=1e-6) - lr_, h["trigger_rate"], h)
    return h["rate_weight"] * h.get("importance_weight", 4.0) * tot / max(1, len(aux))


def init_weights(model: MemMambaForCausalLM, seed: int):
    """Mamba's usual initialisation. Note Blocks start with every importance
    just above tau_note (0.5 < I_t, so every token is noted and the pool is
    the top-P by score: its entries get gradients through I_t; with I_t just
    below tau a layer would note nothing and never learn to) and the
    trigger on (G_t about 0.73)."""
    torch.manual_seed(seed)
    c = model.config
    with torch.no_grad():
        for mod in model.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
        model.backbone.embeddings.weight.normal_(0, 0.02)
        for layer in model.backbone.layers:
            mx = layer.mixer
            mx.A_log.copy_(torch.log(torch.arange(1, mx.N + 1, dtype=torch.float32)).repeat(mx.E, 1))
            mx.D.fill_(1.0)
            mx.dt_proj.weight.uniform_(-mx.R ** -0.5, mx.R ** -0.5)
            dt = torch.exp(torch.rand(mx.E) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
            mx.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            mx.out_proj.weight.mul_(1 / math.sqrt(2 * c.num_hidden_layers))
            if layer.note is not None:
                layer.note.score.fc2.bias.fill_(0.1)  # every token noted at first: the pool (top-P) gets gradients
                layer.note.trigger.bias.fill_(1.0)
        for mod in model.modules():
            if isinstance(mod, torch.nn.Module) and hasattr(mod, "eps") and hasattr(mod, "weight"):
                mod.weight.fill_(1.0)


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """The float32 tensors of a safetensors file written by save_model."""
    import struct
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (path, k)
        lo, hi = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=np.float32).copy()).view(v["shape"])
    return out


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------ data --

class TextData:
    def __init__(self):
        train, held = data.kjv_split()
        if held != data.load_heldout():
            raise SystemExit("testdata/trained/kjv/heldout.txt is stale: run data.py")
        self.train = torch.from_numpy(np.frombuffer(train, dtype=np.uint8).astype(np.int64))
        self.held = torch.from_numpy(np.frombuffer(held, dtype=np.uint8).astype(np.int64))

    def batch(self, g: torch.Generator, B: int, T: int):
        starts = torch.randint(0, len(self.train) - T - 1, (B,), generator=g)
        x = self.train[starts[:, None] + torch.arange(T + 1)[None]]
        return x[:, :-1], x[:, 1:], None


def passkey_episodes(h: dict, rng: random.Random, top: float):
    """A batch of passkey episodes, packed (the adaptive curriculum). Each row
    holds episodes back to back, each a training prompt (its length from
    passkey_length) with its answer and a newline, until the row holds
    row_bytes = max(512, 2*top) bytes; B = tokens_per_batch // row_bytes rows.
    Packing gives dozens of supervised keys per row instead of one: both the
    key's second mention in the key line (a copy over 13 bytes, which
    bootstraps the mechanism) and the answer after the question weigh 1 in
    the loss (the mask `ans`); later episodes follow earlier ones in the same
    mixer state, so the model must answer with the latest key. `spans` lists
    (row, first target index) of each answer, for the accuracy; `seg` the
    episode of each input byte.

    With episode_pools (MemMamba), each episode's Note Block pools start
    empty (fast_forward's seg). Without it (the first MemMamba run, 2272
    steps at chance), a priority pool kept the highest-scoring notes of the
    whole row: the keys of earlier episodes, which a pool never forgets,
    crowded out the key to answer, and the better the model learned to
    score keys the worse that got. Resumed with episode pools, the same
    checkpoint went from 5-25% to 50-65% of its training answers in 100
    steps."""
    row = max(512, int(2 * top))
    B = max(1, h["tokens_per_batch"] // row)
    rows = []
    for _ in range(B):
        s, marks, starts = "", [], []
        while len(s) < row:
            L = passkey_length(h, rng, top)
            p, a = data.train_case(rng, L)
            key = a.strip()
            second = p.index(f"Remember it. {key}") + len("Remember it. ")
            marks.append((len(s) + second, 5, False))
            marks.append((len(s) + len(p), 6, True))
            starts.append(len(s))
            s += p + a + "\n"
        rows.append((s.encode(), marks, starts))
    T = max(len(r) for r, _, _ in rows)
    x = torch.full((B, T), ord(" "), dtype=torch.int64)
    seg = torch.zeros(B, T, dtype=torch.int64)  # episode number of each byte (padding: the last's)
    valid = torch.zeros(B, T - 1, dtype=torch.bool)
    ans = torch.zeros(B, T - 1, dtype=torch.bool)
    spans = []
    for b, (r, marks, starts) in enumerate(rows):
        x[b, :len(r)] = torch.tensor(list(r))
        for at in starts[1:]:
            seg[b, at:] += 1
        valid[b, :len(r) - 1] = True
        for at, n, fin in marks:  # target index i predicts byte i+1
            ans[b, at - 1:at - 1 + n] = True
            if fin:
                spans.append((b, at - 1))
    return x[:, :-1], x[:, 1:], (valid, ans, spans, seg[:, :-1])


def passkey_length(h: dict, rng: random.Random, top: float) -> int:
    """The adaptive curriculum: `top`, the longest prompt, grows by 25% each
    time the model answers at least grow_at (default 85%) of the recent
    batches' questions
    (see train); half of the prompts are drawn in [top/2, top], the rest
    log-uniformly in [len_min, top]. (The first runs, in git history, grew
    the longest length on a fixed schedule instead and fed one prompt per
    row.)"""
    lo = h["len_min"]
    if rng.random() < 0.5:
        return int(rng.uniform(max(lo, top / 2), top))
    return int(math.exp(rng.uniform(math.log(lo), math.log(top))))


# ------------------------------------------------------------- training --

def lr_at(h, step):
    if step < h["warmup"]:
        return h["lr"] * (step + 1) / h["warmup"]
    p = (step - h["warmup"]) / max(1, h["steps"] - h["warmup"])
    return h["lr"] * (h["min_lr_frac"] + (1 - h["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def make_optimizer(model, h):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embeddings" not in n else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": h["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}], lr=h["lr"], betas=h["betas"])


def out_dir(name):
    return os.path.join(data.TRAINED, name)


def save_model(name, model, h, info, d=None):
    d = d or out_dir(name)
    os.makedirs(d, exist_ok=True)
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(d, "model.safetensors.tmp"), sd, metadata={"format": "pt"})
    os.replace(os.path.join(d, "model.safetensors.tmp"), os.path.join(d, "model.safetensors"))
    cfg = hf_config(model.config, "bytes")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(d, "train.json"), "w") as f:
        json.dump(dict(info, hyperparameters=h), f, indent=1, sort_keys=True)
        f.write("\n")


def train(name: str, resume: bool, max_minutes: float, overrides=None, out=None):
    torch.set_num_threads(1)
    h = {**COMMON, **PRESETS[name], **(overrides or {})}
    model = MemMambaForCausalLM(Config.from_dict(h["config"]))
    init_weights(model, h["seed"])
    if h.get("init_from"):  # fine-tune a committed model
        model.load_state_dict(read_safetensors(os.path.join(out_dir(h["init_from"]), "model.safetensors")))
        print(f"initialised from {h['init_from']}")
    opt = make_optimizer(model, h)
    g = torch.Generator().manual_seed(h["seed"])
    rng = random.Random(h["seed"])
    step, elapsed, log = 0, 0.0, []
    top, top_acc = float(h.get("len_min", 0)), 0.0  # the adaptive curriculum's state
    d = out or out_dir(name)
    os.makedirs(d, exist_ok=True)
    rp = os.path.join(d, "resume.pt")
    if resume and os.path.exists(rp):
        ck = torch.load(rp)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["gen"])
        rng.setstate(ck["rng"])
        step, elapsed, log = ck["step"], ck["elapsed"], ck["log"]
        top, top_acc = ck.get("top", top), ck.get("top_acc", top_acc)
        print(f"resumed {name} at step {step} ({elapsed / 60:.1f} min)")
        if overrides:
            log.append(f"# step {step}: resumed with {json.dumps(overrides, sort_keys=True)}")
    text = TextData() if h["task"] == "text" else None
    npar = n_params(model)
    print(f"{name}: {npar} parameters, {h['steps']} steps")

    def checkpoint():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": g.get_state(),
                    "rng": rng.getstate(), "step": step, "elapsed": elapsed, "log": log,
                    "top": top, "top_acc": top_acc}, rp + ".tmp")
        os.replace(rp + ".tmp", rp)
        with open(os.path.join(d, "train_log.txt"), "w") as f:
            f.write("\n".join(log) + "\n")

    if not log:
        log.append("# step  minutes  lr  loss  (text: train bits/byte of the batch; passkey: answer nats/byte, "
                   "lm nats/byte, answer accuracy of the batch)  [eval lines: held-out bits/byte or eval accuracy]")
    t0 = time.time() - elapsed
    ema = None
    while step < h["steps"]:
        if max_minutes and (time.time() - t0) / 60 > max_minutes:
            print(f"stopping at step {step}: time budget {max_minutes} min")
            break
        lr = lr_at(h, step)
        for grp in opt.param_groups:
            grp["lr"] = lr
        model.train()
        if text is not None:
            x, y, _ = text.batch(g, h["batch"], h["seq_len"])
            aux = []
            logits = fast_forward(model, x, aux=aux)
            loss = F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
            msg = f"{loss.item() / LN2:.4f}"
            val = loss.item() / LN2
        else:
            x, y, (valid, ans, spans, seg) = passkey_episodes(h, rng, top)
            L, B = x.shape[1], x.shape[0]
            aux = []
            logits = fast_forward(model, x, aux=aux, seg=seg if h.get("episode_pools") else None)
            ce = F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1), reduction="none").view(y.shape)
            la = ce[ans].mean()
            lm = ce[valid & ~ans].mean()
            loss = la + h["lm_weight"] * lm
            with torch.no_grad():
                pred = logits.argmax(-1)
                ok = sum(bool((pred[b, i:i + 6] == y[b, i:i + 6]).all()) for b, i in spans) / len(spans)
            msg = f"{la.item():.4f} {lm.item():.4f} {ok:.3f} L={L} B={B} top={int(top)}"
            val = la.item()
            top_acc = 0.9 * top_acc + 0.1 * ok
            if top_acc >= h.get("grow_at", 0.85) and top < h["len_max"]:
                top, top_acc = min(h["len_max"], top * 1.25), 0.0
                log.append(f"# step {step}: curriculum top length -> {int(top)}")
        if aux:
            if h.get("importance_target"):
                loss = loss + importance_loss(model, aux, h, x)
            else:
                loss = loss + rate_loss(model, aux, h)
            mc = model.config.memory
            msg += " noted " + ",".join(f"{(i > mc.tau_note).float().mean().item():.2f}" for i, _ in aux)
            msg += " trig " + ",".join(f"{(g > mc.tau_retrieve).float().mean().item():.2f}" for _, g in aux)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), h["grad_clip"])
        opt.step()
        step += 1
        elapsed = time.time() - t0
        ema = val if ema is None else 0.9 * ema + 0.1 * val
        if step % h["log_every"] == 0 or step == 1:
            line = f"{step} {elapsed / 60:.2f} {lr:.2e} {msg}"
            log.append(line)
            print(line + f"  (ema {ema:.4f})", flush=True)
        if step % h["eval_every"] == 0 or step == h["steps"]:
            model.eval()
            with torch.no_grad():
                if text is not None:
                    e = quick_heldout(model, text, h["seq_len"])
                    line = f"eval {step} {elapsed / 60:.2f} heldout_bpb {e:.4f}"
                else:
                    acc = {L: passkey_acc_fast(model, L, 10) for L in (256, 1024)}
                    line = f"eval {step} {elapsed / 60:.2f} passkey_acc " + " ".join(f"{k}:{v:.2f}" for k, v in acc.items())
            log.append(line)
            print(line, flush=True)
        if step % h["ckpt_every"] == 0 or step == h["steps"]:
            checkpoint()
            save_model(name, model, h, {"name": name, "parameters": npar, "step": step,
                                        "train_minutes": round(elapsed / 60, 2), "final": False}, d)
    checkpoint()
    info = {"name": name, "parameters": npar, "step": step, "train_minutes": round(elapsed / 60, 2),
            "final": step >= h["steps"], "threads": 1}
    save_model(name, model, h, info, d)
    info.update(evaluate(name, model, h, text))
    save_model(name, model, h, info, d)
    print(json.dumps(info, indent=1))


def quick_heldout(model, text, T, n=16):
    """Held-out bits/byte on n evenly spaced windows of T bytes (fast mode)."""
    starts = torch.linspace(0, len(text.held) - T - 2, n).long()
    x = text.held[starts[:, None] + torch.arange(T + 1)[None]]
    logits = fast_forward(model, x[:, :-1])
    return F.cross_entropy(logits.reshape(-1, 256), x[:, 1:].reshape(-1)).item() / LN2


def passkey_acc_fast(model, L, n):
    ok = 0
    for t in range(n):
        c = data.eval_case(L, t)
        s = torch.tensor(list((c["prompt"] + c["answer"]).encode()))
        logits = fast_forward(model, s[None, :-1])[0]
        ok += bool((logits[-6:].argmax(-1) == s[-6:]).all())
    return ok / n


# ------------------------------------------------------------ evaluation --

def evaluate(name, model, h, text=None):
    """Final numbers from the reference's own sequence mode (memmamba.py's
    forward, one sequence at a time, from an empty state), float32."""
    model.eval()
    res = {}
    t0 = time.time()
    with torch.no_grad():
        if h["task"] == "text":
            text = text or TextData()
            T = h["seq_len"]
            held = text.held
            nw = (len(held) - 1) // T
            tot, cnt, maxdiff = 0.0, 0, 0.0
            for w in range(nw):
                seq = held[w * T:(w + 1) * T + 1]
                lg = model(seq[:-1])
                tot += F.cross_entropy(lg, seq[1:], reduction="sum").item()
                cnt += T
                if w < 4:  # the training path agrees with the reference
                    maxdiff = max(maxdiff, (fast_forward(model, seq[None, :-1])[0] - lg).abs().max().item())
            res["heldout_bpb"] = round(tot / cnt / LN2, 4)
            res["heldout_eval"] = (f"reference sequence mode, {nw} consecutive windows of {T} bytes of "
                                   f"heldout.txt, each from an empty state ({cnt} predictions)")
            g = torch.Generator().manual_seed(12345)
            tot = 0.0
            for _ in range(32):
                x, y, _ = text.batch(g, 1, T)
                tot += F.cross_entropy(model(x[0]), y[0], reduction="sum").item()
            res["train_bpb"] = round(tot / (32 * T) / LN2, 4)
            n = STREAM_BYTES
            st, tot = model.new_state(), 0.0
            for i in range(n):
                lg = model.step(int(held[i]), st)
                tot += F.cross_entropy(lg[None], held[i + 1:i + 2]).item()
            res["heldout_stream_bpb"] = round(tot / n / LN2, 4)
            res["heldout_stream_eval"] = (f"reference step mode (the definition), one stream from an empty state "
                                          f"over the first {n + 1} bytes of heldout.txt ({n} predictions)")
            res["train_eval"] = f"reference sequence mode, 32 random training windows of {T} bytes (seed 12345)"
        else:
            acc, maxdiff = {}, 0.0
            for L in (256, 512, 1024, 2048, 4096):
                ok = 0
                for t in range(data.EVAL_TRIALS):
                    c = data.eval_case(L, t)
                    s = torch.tensor(list((c["prompt"] + c["answer"]).encode()))
                    lg = model(s[:-1])
                    ok += bool((lg[-6:].argmax(-1) == s[-6:]).all())
                    if t == 0 and L <= 1024:
                        maxdiff = max(maxdiff, (fast_forward(model, s[None, :-1])[0] - lg).abs().max().item())
                acc[str(L)] = ok / data.EVAL_TRIALS
                print(f"passkey {L}: {acc[str(L)]:.2f}", flush=True)
            res["passkey_accuracy"] = acc
            res["passkey_eval"] = (f"reference sequence mode on passkey_eval.jsonl prompts (trials 0..{data.EVAL_TRIALS - 1}),"
                                   " right when the 6 answer bytes are each the argmax (= greedy decoding)")
        res["fast_vs_reference_max_abs_logit_diff"] = maxdiff
        if model.config.model_type == "memmamba":
            res["note_stats"] = note_stats(model, h, text)
    res["eval_minutes"] = round((time.time() - t0) / 60, 2)
    return res


def note_stats(model, h, text):
    """Per layer, on held-out text (or passkey prompts): the fraction of tokens
    noted (I_t > tau_note), retrieving (G_t > tau_retrieve and a pool), and
    with I_t or G_t within 1e-3 of its threshold (where a float32 runtime
    may decide differently from the reference)."""
    mc = model.config.memory
    if h["task"] == "text":
        T = h["seq_len"]
        x = torch.stack([text.held[w * T:(w + 1) * T] for w in range(8)])
    else:
        x = torch.tensor([list(data.eval_case(1024, t)["prompt"].encode()[:900]) for t in range(8)])
    _, det = fast_forward(model, x, return_details=True)
    out = []
    for d in det:
        imp, trig = d["importance"], d["trigger"]
        out.append({"noted": round(float((imp > mc.tau_note).float().mean()), 4),
                    "retrieved": round(float(d["retrieved"].float().mean()), 4),
                    "near_tau": round(float(((imp - mc.tau_note).abs() < 1e-3).float().mean()
                                            + ((trig - mc.tau_retrieve).abs() < 1e-3).float().mean()), 5)})
    return out


def eval_only(name):
    torch.set_num_threads(1)
    h = dict(COMMON, **PRESETS[name])
    d = out_dir(name)
    model = MemMambaForCausalLM(Config.from_dict(h["config"]))
    ck = torch.load(os.path.join(d, "resume.pt"))
    model.load_state_dict(ck["model"])
    with open(os.path.join(d, "train.json")) as f:
        info = json.load(f)
    info.pop("hyperparameters", None)
    info.update(evaluate(name, model, h))
    save_model(name, model, h, info)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", nargs="?", choices=sorted(PRESETS))
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--eval", action="store_true", help="only re-run the final evaluation")
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a hyperparameter (recorded in train.json), e.g. --set lr=0.005")
    ap.add_argument("--out", help="output folder (default testdata/trained/NAME), for trial runs")
    ap.add_argument("--params", action="store_true", help="print parameter counts of the presets")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.selftest:
        selftest()
    elif a.params:
        for n, p in PRESETS.items():
            print(n, n_params(MemMambaForCausalLM(Config.from_dict(p["config"]))))
    elif a.eval:
        eval_only(a.name)
    elif a.name:
        train(a.name, a.resume, a.max_minutes, {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.set)},
              a.out)
    else:
        ap.error("name a model or --selftest")
