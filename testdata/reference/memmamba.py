"""PyTorch reference implementation of MemMamba and Mamba-1 (../../../shared/SPEC.md),
and of Falcon-Mamba (model_type "falcon_mamba": Mamba-1 with a weightless
RMSNorm, eps ``mixer_rms_eps``, on delta, B and C after x_proj, as Hugging
Face's FalconMambaMixer; the SPEC is silent on it, README.md records it).

Two ways to run a model, which must agree:

* ``step`` (the definition): one token at a time with an explicit recurrent
  state (``State``), exactly as SPEC.md's "Forward pass" reads.
* ``forward`` (sequence mode): a whole sequence at once, layer by layer. The
  mixer runs as a convolution plus a scan over the sequence, and the Note
  Block's pools are computed with masks: with ``priority`` eviction the pool
  after token t is the top-P notes taken so far (score descending, earlier
  position first), with ``fifo`` the last P. This is the form one trains with.

``state_dict()`` gives exactly the SPEC's tensor names, so what a user trains
with this module converts with ``mmconvert`` as it is.

Runs on Debian's python3-torch 1.13 (``/usr/bin/python3``), CPU only. The
reference math is done in whatever dtype the module holds; fixtures use
float64.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, asdict
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- config --

@dataclass
class MemoryConfig:
    pool_size: int = 50
    summary_dim: int = 64
    score_dim: int = 0  # 0 = d/4 (at least 1), resolved by Config
    attn_dim: int = 64
    n_heads: int = 4
    tau_note: float = 0.5
    tau_retrieve: float = 0.3
    cross_layer_every: int = 4
    eviction: str = "priority"


@dataclass
class Config:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    state_size: int = 16
    conv_kernel: int = 4
    intermediate_size: int = 0  # 0 = expand * hidden_size
    time_step_rank: int = 0  # 0 = ceil(hidden_size / 16)
    layer_norm_epsilon: float = 1e-5
    use_bias: bool = False
    use_conv_bias: bool = True
    tie_word_embeddings: bool = True
    model_type: str = "mamba"
    memory: Optional[MemoryConfig] = None
    expand: int = 2
    mixer_rms_eps: float = 1e-6  # falcon_mamba only

    def __post_init__(self):
        if not self.intermediate_size:
            self.intermediate_size = self.expand * self.hidden_size
        if not self.time_step_rank or self.time_step_rank == "auto":
            self.time_step_rank = math.ceil(self.hidden_size / 16)
        if self.model_type == "memmamba":
            if self.memory is None:
                self.memory = MemoryConfig()
            elif isinstance(self.memory, dict):
                self.memory = MemoryConfig(**self.memory)
            if not self.memory.score_dim:
                self.memory.score_dim = max(self.hidden_size // 4, 1)
            assert self.memory.attn_dim % self.memory.n_heads == 0
            assert self.memory.eviction in ("priority", "fifo")
        elif self.model_type not in ("mamba", "falcon_mamba"):
            raise ValueError(f"model_type {self.model_type!r}")

    # Aliases accepted on input (SPEC.md, "Notation and configuration").
    ALIASES = {
        "d_model": "hidden_size",
        "n_layer": "num_hidden_layers",
        "d_state": "state_size",
        "d_conv": "conv_kernel",
        "d_inner": "intermediate_size",
        "dt_rank": "time_step_rank",
        "rms_norm_eps": "layer_norm_epsilon",
        "tie_embeddings": "tie_word_embeddings",
    }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Config":
        d = dict(d)
        for k, v in (d.pop("ssm_cfg", None) or {}).items():
            d.setdefault(k, v)
        kw: Dict[str, Any] = {}
        names = {f for f in cls.__dataclass_fields__}
        for k, v in d.items():
            k = cls.ALIASES.get(k, k)
            if k in names and k not in kw:
                kw[k] = v
        if kw.get("time_step_rank") == "auto":
            kw["time_step_rank"] = 0
        return cls(**kw)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d.pop("expand")
        if d["memory"] is None:
            d.pop("memory")
        if self.model_type != "falcon_mamba":
            d.pop("mixer_rms_eps")
        return d

    def has_cross_layer(self, l: int) -> bool:
        m = self.memory
        return m is not None and m.cross_layer_every > 0 and (l + 1) % m.cross_layer_every == 0


# ---------------------------------------------------------------- layers --

class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rms_forward(x, eps: float):
    """Falcon-Mamba's weightless RMSNorm over the last dimension."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def softplus(v):
    """SPEC: v if v > 20 else log(1 + exp(v))."""
    return torch.where(v > 20, v, torch.log1p(torch.exp(torch.clamp(v, max=20))))


class MambaMixer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        d, E, N, K, R = c.hidden_size, c.intermediate_size, c.state_size, c.conv_kernel, c.time_step_rank
        self.E, self.N, self.K, self.R = E, N, K, R
        # Falcon-Mamba: RMS-normalise delta, B and C (no weight).
        self.dbc_eps = c.mixer_rms_eps if c.model_type == "falcon_mamba" else None
        self.in_proj = nn.Linear(d, 2 * E, bias=c.use_bias)
        self.conv1d = nn.Conv1d(E, E, K, groups=E, padding=K - 1, bias=c.use_conv_bias)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d, bias=c.use_bias)

    def _ssm_inputs(self, a):
        """a' (..., E) -> dt (..., E), B (..., N), C (..., N)."""
        delta, B, C = torch.split(self.x_proj(a), [self.R, self.N, self.N], dim=-1)
        if self.dbc_eps is not None:
            delta, B, C = (rms_forward(v, self.dbc_eps) for v in (delta, B, C))
        dt = softplus(self.dt_proj(delta))
        return dt, B, C

    def step(self, u, conv, h):
        """One token. u: (d,), conv: (E, K-1) last inputs oldest first, h: (E, N).
        Returns m (d,), new conv, new h."""
        a, z = self.in_proj(u).chunk(2, dim=-1)
        window = torch.cat([conv, a[:, None]], dim=1)  # (E, K)
        c = (window * self.conv1d.weight[:, 0, :]).sum(-1)
        if self.conv1d.bias is not None:
            c = c + self.conv1d.bias
        a1 = F.silu(c)
        dt, B, C = self._ssm_inputs(a1)
        A = -torch.exp(self.A_log)
        h = torch.exp(dt[:, None] * A) * h + dt[:, None] * B[None, :] * a1[:, None]
        y = (h * C[None, :]).sum(-1) + self.D * a1
        m = self.out_proj(y * F.silu(z))
        return m, window[:, 1:], h

    def forward(self, u, conv=None, h=None):
        """A sequence. u: (T, d). Optional initial conv (E, K-1) and h (E, N).
        Returns m (T, d), final conv, final h."""
        T = u.shape[0]
        E, N, K = self.E, self.N, self.K
        a, z = self.in_proj(u).chunk(2, dim=-1)  # (T, E) each
        if conv is None:
            conv = a.new_zeros(E, K - 1)
        if h is None:
            h = a.new_zeros(E, N)
        xs = torch.cat([conv, a.t()], dim=1)  # (E, K-1+T)
        c = F.conv1d(xs[None], self.conv1d.weight, self.conv1d.bias, groups=E)[0].t()  # (T, E)
        a1 = F.silu(c)
        dt, B, C = self._ssm_inputs(a1)
        A = -torch.exp(self.A_log)
        dA = torch.exp(dt[:, :, None] * A[None])  # (T, E, N)
        dBx = dt[:, :, None] * B[:, None, :] * a1[:, :, None]
        ys = []
        for t in range(T):
            h = dA[t] * h + dBx[t]
            ys.append((h * C[t][None, :]).sum(-1))
        y = torch.stack(ys) + self.D * a1
        m = self.out_proj(y * F.silu(z))
        return m, xs[:, xs.shape[1] - (K - 1):], h


class Scorer(nn.Module):
    def __init__(self, d: int, hs: int):
        super().__init__()
        self.fc1 = nn.Linear(d, hs)
        self.fc2 = nn.Linear(hs, 1)

    def forward(self, r):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(r))))[..., 0]


class Attend(nn.Module):
    """SPEC's Attend(r, entries): gated multi-head attention of r over pool summaries."""

    def __init__(self, c: Config):
        super().__init__()
        d, m = c.hidden_size, c.memory
        self.H, self.A = m.n_heads, m.attn_dim
        self.norm = RMSNorm(d, c.layer_norm_epsilon)
        self.q_proj = nn.Linear(d, m.attn_dim, bias=False)
        self.k_proj = nn.Linear(m.summary_dim, m.attn_dim, bias=False)
        self.v_proj = nn.Linear(m.summary_dim, m.attn_dim, bias=False)
        self.o_proj = nn.Linear(m.attn_dim, d, bias=False)
        self.gate = nn.Linear(2 * d, d)

    def forward(self, r, s, mask):
        """r: (T, d) queries; s: (J, S) summaries; mask: (T, J) bool, which
        summaries each query sees. Rows whose mask is empty get 0."""
        T, H, hd = r.shape[0], self.H, self.A // self.H
        q = self.q_proj(self.norm(r)).view(T, H, hd)
        k = self.k_proj(s).view(-1, H, hd)
        v = self.v_proj(s).view(-1, H, hd)
        att = torch.einsum("thd,jhd->thj", q, k) / math.sqrt(hd)
        att = att.masked_fill(~mask[:, None, :], float("-inf"))
        any_ = mask.any(-1)
        att = torch.where(any_[:, None, None], att, torch.zeros_like(att))
        alpha = torch.softmax(att, dim=-1)
        o = self.o_proj(torch.einsum("thj,jhd->thd", alpha, v).reshape(T, self.A))
        g = torch.sigmoid(self.gate(torch.cat([r, o], dim=-1)))
        return torch.where(any_[:, None], g * o, torch.zeros_like(o))


class NoteBlock(nn.Module):
    def __init__(self, c: Config, cross_layer: bool):
        super().__init__()
        d, m = c.hidden_size, c.memory
        self.score = Scorer(d, m.score_dim)
        self.trigger = nn.Linear(d, 1)
        self.summary = nn.Linear(d, m.summary_dim, bias=False)
        self.token_attn = Attend(c)
        self.layer_attn = Attend(c) if cross_layer else None


class Layer(nn.Module):
    def __init__(self, c: Config, l: int):
        super().__init__()
        self.mixer = MambaMixer(c)
        self.norm = RMSNorm(c.hidden_size, c.layer_norm_epsilon)
        self.note = NoteBlock(c, c.has_cross_layer(l)) if c.model_type == "memmamba" else None


class Backbone(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c, l) for l in range(c.num_hidden_layers)])
        self.norm_f = RMSNorm(c.hidden_size, c.layer_norm_epsilon)


# ----------------------------------------------------------------- state --

@dataclass
class PoolEntry:
    summary: torch.Tensor  # (S,)
    score: float
    pos: int


@dataclass
class LayerState:
    conv: torch.Tensor  # (E, K-1), oldest first
    ssm: torch.Tensor  # (E, N)
    prev_m: torch.Tensor  # (d,)
    pool: List[PoolEntry] = field(default_factory=list)


@dataclass
class State:
    layers: List[LayerState]
    pos: int = 0

    def to_json(self) -> Dict[str, Any]:
        f32 = lambda t: [float(x) for x in t.to(torch.float32).reshape(-1).tolist()]
        return {
            "pos": self.pos,
            "layers": [
                {
                    "conv": f32(ls.conv),
                    "ssm": f32(ls.ssm),
                    "prev_m": f32(ls.prev_m),
                    "pool": [{"pos": e.pos, "score": e.score, "summary": f32(e.summary)} for e in ls.pool],
                }
                for ls in self.layers
            ],
        }


# ----------------------------------------------------------------- model --

class MemMambaForCausalLM(nn.Module):
    """Mamba-1 (model_type "mamba"), MemMamba ("memmamba") or Falcon-Mamba
    ("falcon_mamba")."""

    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.backbone = Backbone(c)
        self.lm_head = None if c.tie_word_embeddings else nn.Linear(c.hidden_size, c.vocab_size, bias=False)

    def _logits(self, x):
        x = self.backbone.norm_f(x)
        w = self.backbone.embeddings.weight if self.lm_head is None else self.lm_head.weight
        return x @ w.t()

    def new_state(self) -> State:
        c, p = self.config, self.backbone.embeddings.weight
        z = lambda *s: torch.zeros(*s, dtype=p.dtype)
        return State([LayerState(z(c.intermediate_size, c.conv_kernel - 1), z(c.intermediate_size, c.state_size),
                                 z(c.hidden_size)) for _ in range(c.num_hidden_layers)])

    # ---- step mode: the definition ----

    @torch.no_grad()
    def step(self, token: int, state: State, trace: Optional[List[List[dict]]] = None) -> torch.Tensor:
        """Runs one token, updating state in place; returns logits (V,).
        If trace is given (one list per layer), appends each layer's Note
        Block decisions."""
        c, t = self.config, state.pos
        x = self.backbone.embeddings.weight[token]
        for l, layer in enumerate(self.backbone.layers):
            ls = state.layers[l]
            m, ls.conv, ls.ssm = layer.mixer.step(layer.norm(x), ls.conv, ls.ssm)
            r = x + m
            if layer.note is None:
                x = r
            else:
                x = self._note_step(l, layer.note, r, m, state, trace)
            ls.prev_m = m
        state.pos += 1
        return self._logits(x)

    def _note_step(self, l, nb, r, m, state, trace):
        c, mc, t = self.config, self.config.memory, state.pos
        ls = state.layers[l]
        imp = float(nb.score(r))
        trig = float(torch.sigmoid(nb.trigger(ls.prev_m))[0])
        # 3. cross-token retrieval, over the pool before this token
        retrieved = trig > mc.tau_retrieve and len(ls.pool) > 0
        c_tok = torch.zeros_like(r)
        if retrieved:
            s = torch.stack([e.summary for e in ls.pool])
            c_tok = trig * nb.token_attn(r[None], s, torch.ones(1, len(ls.pool), dtype=torch.bool))[0]
        # 4. note taking
        action, evicted = "skip", -1
        if imp > mc.tau_note:
            entry = PoolEntry(imp * nb.summary(r), imp, t)
            if len(ls.pool) < mc.pool_size:
                ls.pool.append(entry)
                action = "note"
            elif mc.eviction == "fifo":
                i = min(range(len(ls.pool)), key=lambda i: ls.pool[i].pos)
                evicted, ls.pool[i], action = ls.pool[i].pos, entry, "evict"
            else:
                # lowest score; ties: the most recent position
                i = min(range(len(ls.pool)), key=lambda i: (ls.pool[i].score, -ls.pool[i].pos))
                if imp > ls.pool[i].score:
                    evicted, ls.pool[i], action = ls.pool[i].pos, entry, "evict"
                else:
                    action = "drop"
        # 5. cross-layer retrieval, over the pools after this token's step 4
        cross = False
        c_lay = torch.zeros_like(r)
        if c.has_cross_layer(l):
            pools = [e for j in range(max(0, l - mc.cross_layer_every + 1), l + 1) for e in state.layers[j].pool]
            if pools:
                cross = True
                s = torch.stack([e.summary for e in pools])
                c_lay = nb.layer_attn(r[None], s, torch.ones(1, len(pools), dtype=torch.bool))[0]
        if trace is not None:
            trace[l].append({
                "pos": t, "importance": imp, "trigger": trig, "retrieved": retrieved,
                "note": action, "evicted": evicted, "cross_layer": cross,
                "pool": [e.pos for e in ls.pool],
            })
        return r + c_tok + c_lay

    # ---- sequence mode: masks, as in training ----

    def pool_mask(self, imp: torch.Tensor) -> torch.Tensor:
        """Membership of each token's note in the pool after each token:
        M[t, j] is true when the note of token j is in the pool after token t.
        priority: the top-P notes so far by (score desc, position asc);
        fifo: the last P notes."""
        mc = self.config.memory
        T = imp.shape[0]
        noted = imp > mc.tau_note
        idx = torch.arange(T)
        cand = noted[None, :] & (idx[None, :] <= idx[:, None])  # (t, j): note j taken by token t
        if mc.eviction == "fifo":
            beats = idx[None, :] > idx[:, None]  # (j, i): note i is newer than note j
        else:
            # (j, i): note i ranks above note j: higher score, or equal and earlier
            beats = (imp[None, :] > imp[:, None]) | ((imp[None, :] == imp[:, None]) & (idx[None, :] < idx[:, None]))
        # above[j, t]: notes i <= t that rank above note j
        above = torch.cumsum((noted[None, :] & beats).to(torch.int64), dim=1)
        return cand & (above.t() < mc.pool_size)

    def forward(self, tokens: torch.Tensor, return_details: bool = False):
        """Sequence mode from an empty state. tokens: (T,) long. Returns logits
        (T, V) and, if asked, per-layer importance, trigger and pool masks."""
        c = self.config
        T = tokens.shape[0]
        x = self.backbone.embeddings(tokens)
        details = []
        masks, sums = [], []  # per layer, for cross-layer retrieval
        for l, layer in enumerate(self.backbone.layers):
            m, _, _ = layer.mixer(layer.norm(x))
            r = x + m
            if layer.note is None:
                x = r
                continue
            nb, mc = layer.note, c.memory
            imp = nb.score(r)
            prev_m = torch.cat([m.new_zeros(1, m.shape[1]), m[:-1]])
            trig = torch.sigmoid(nb.trigger(prev_m))[:, 0]
            M = self.pool_mask(imp)  # after token t
            S = imp[:, None] * nb.summary(r)
            before = torch.cat([M.new_zeros(1, T), M[:-1]])  # before token t
            on = (trig > mc.tau_retrieve) & before.any(-1)
            c_tok = trig[:, None] * nb.token_attn(r, S, before & on[:, None])
            masks.append(M)
            sums.append(S)
            c_lay = torch.zeros_like(r)
            if c.has_cross_layer(l):
                lo = max(0, l - mc.cross_layer_every + 1)
                c_lay = nb.layer_attn(r, torch.cat(sums[lo:l + 1]), torch.cat(masks[lo:l + 1], dim=1))
            x = r + c_tok + c_lay
            details.append({"importance": imp, "trigger": trig, "mask": M, "retrieved": on})
        logits = self._logits(x)
        return (logits, details) if return_details else logits


def load_config(path: str) -> Config:
    with open(path) as f:
        return Config.from_dict(json.load(f))
