"""A tiny byte-level BPE, in the form of Hugging Face's tokenizer.json (the
GPT-2 / GPT-NeoX family: ByteLevel pre-tokenizer with the GPT-2 regex, BPE
model, ByteLevel decoder), for the fixture that carries a tokenizer.json.

It trains merges on a small built-in corpus and encodes ASCII text exactly as
Hugging Face's tokenizers would with that file: for ASCII the GPT-2 regex's
\\p{L} and \\p{N} are [A-Za-z] and [0-9], which Python's re can express.
Non-ASCII text is refused rather than encoded approximately. The project's
real tokenizer tests (testdata/tokenizers/) compare against Hugging Face's own
implementation; this file only has to be self-consistent.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Dict, List

CORPUS = """
The quick brown fox jumps over the lazy dog. The state space model reads the
sequence once, and keeps a small state that does not grow. When a token
matters, the note block writes it down in the pool; when the trigger fires,
the layer reads the pool back. In the beginning the notes were few, and the
model wrote them down with care. Then there were many notes, and the pool was
full, and the oldest or the weakest note was evicted. 0123456789 0123456789.
""" * 3

SPECIALS = ["<|endoftext|>", "<|padding|>"]

# The GPT-2 pre-tokenization regex, restricted to ASCII.
PAT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()
U2B = {u: b for b, u in B2U.items()}


def pretokenize(text: str) -> List[str]:
    if not text.isascii():
        raise ValueError("bpe.py encodes ASCII text only")
    return ["".join(B2U[b] for b in w.encode()) for w in PAT.findall(text)]


def train_tokenizer_json(corpus: str, n_merges: int) -> dict:
    words = Counter(pretokenize(corpus))
    splits = {w: list(w) for w in words}
    merges: List[List[str]] = []
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for w, n in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(list(best))
        for w in words:
            s, out, i = splits[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    vocab: Dict[str, int] = {t: i for i, t in enumerate(SPECIALS)}
    for b in B2U.values():
        vocab[b] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, t in enumerate(SPECIALS)
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges],
        },
    }


class Encoder:
    def __init__(self, tok: dict):
        self.vocab = tok["model"]["vocab"]
        self.ranks = {tuple(m.split(" ")): i for i, m in enumerate(tok["model"]["merges"])}
        self.specials = [t["content"] for t in tok["added_tokens"]]

    def _bpe(self, word: str) -> List[str]:
        s = list(word)
        while len(s) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(s, s[1:]))]
            rank, _ = min(pairs)
            if rank == 1 << 30:
                break
            a, b = [k for k, r in self.ranks.items() if r == rank][0]
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            s = out
        return s

    def encode(self, text: str) -> List[int]:
        parts = re.split("(" + "|".join(map(re.escape, self.specials)) + ")", text)
        ids: List[int] = []
        for p in parts:
            if p in self.specials:
                ids.append(self.vocab[p])
                continue
            for w in pretokenize(p):
                ids += [self.vocab[t] for t in self._bpe(w)]
        return ids


def decode(tok: dict, ids: List[int]) -> str:
    inv = {i: t for t, i in tok["model"]["vocab"].items()}
    out = bytearray()
    for i in ids:
        t = inv[i]
        if t in SPECIALS:
            out += t.encode()
        else:
            out += bytes(U2B[ch] for ch in t)
    return out.decode("utf-8", errors="replace")
