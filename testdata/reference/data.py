#!/usr/bin/python3
"""Training and evaluation data for the trained models (issue 7): the King
James Bible as bytes, and a seeded synthetic passkey retrieval task.

    /usr/bin/python3 testdata/reference/data.py            # writes the files below
    /usr/bin/python3 testdata/reference/data.py --check    # verifies them

Text (language modelling, byte-level, vocab 256)
-------------------------------------------------
Source: Debian's ``bible-kjv-text`` package (public domain), read with the
``bible`` program of ``bible-kjv`` (``apt-get install -y bible-kjv-text``
installs both; the data file /usr/lib/bible.data is compressed in that
program's own format). The whole text is

    bible -l10000 Genesis1:1-Revelation22:21

(one verse per line, no wrapping), 4,298,239 bytes of ASCII, 1189 chapters.
Each chapter begins with a line "<Book> <n>" (the output's first byte is
a newline, which belongs to no chapter and is dropped). A chapter is the
text from its header line up to (not including) the next chapter's header.

Split, deterministic: chapter i (0-based, in book order, Genesis 1 = 0)
is held out when ``i % 20 == 19`` (59 chapters, about 5%); the others are
the training text. Each split is its chapters concatenated in order. The
held-out text is committed as ``testdata/trained/kjv/heldout.txt`` (with its
SHA-256 and the full text's in ``testdata/trained/kjv/split.json``); the
training text is rebuilt from the package whenever needed.

Passkey retrieval
-----------------
A prompt of at most ``length`` bytes:

    S[0] S[1] ... S[k-1]  KEY_LINE  S[k] ... S[n-1]  QUESTION

where ``S[i] = FILLER[i % 5]`` (the five filler sentences below, each
with its trailing space), ``KEY_LINE = "The pass key is NNNNN. Remember it.
NNNNN is the pass key. "`` and ``QUESTION = "What is the pass key? The pass
key is"``. n is the largest count of filler sentences for which the whole
prompt fits in ``length`` bytes; the key is inserted after k of them
(0 <= k <= n). The expected continuation is ``ANSWER = " NNNNN"`` (a space
and the five digits). Accuracy: greedy decoding of 6 bytes equals ANSWER.

Evaluation prompts are drawn with SplitMix64 so that any implementation can
regenerate them (Go: a dozen lines)::

    state = (seed * 0x100000001B3 + length) * 0x100000001B3 + trial   (mod 2^64)
    next():  state += 0x9E3779B97F4A7C15
             z = state
             z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
             z = (z ^ (z >> 27)) * 0x94D049BB133111EB
             return z ^ (z >> 31)                                      (all mod 2^64)
    key = 10000 + next() % 90000      (five digits)
    k   = next() % (n + 1)            (filler sentences before the key line)

with seed ``EVAL_SEED = 7``. ``testdata/trained/passkey_eval/passkey_eval.jsonl``
lists, for each length in ``EVAL_LENGTHS`` and trial 0..EVAL_TRIALS-1, the
key, n, k, the prompt's byte length and SHA-256, and for lengths up to 2048
the prompt itself, so an implementation can check its generator.

Training prompts use a different stream (Python's random.Random seeded by
the training seed), so no evaluation prompt is trained on except by chance.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
from typing import List, Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TRAINED = os.path.join(ROOT, "testdata", "trained")
KJV_DIR = os.path.join(TRAINED, "kjv")
PASSKEY_DIR = os.path.join(TRAINED, "passkey_eval")

HELDOUT_EVERY = 20  # chapter i is held out when i % 20 == 19
KJV_BYTES = 4298239
KJV_CHAPTERS = 1189

# ------------------------------------------------------------------ text --


def kjv_chapters() -> List[bytes]:
    """The King James Bible from the bible-kjv-text package, split into its
    1189 chapters (see the module doc)."""
    try:
        out = subprocess.run(["bible", "-l10000", "Genesis1:1-Revelation22:21"], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"cannot run the bible program ({e}); apt-get install -y bible-kjv-text") from e
    if len(out) != KJV_BYTES:
        raise SystemExit(f"bible printed {len(out)} bytes, want {KJV_BYTES}: another version of bible-kjv-text?")
    lines = out.split(b"\n")
    assert lines[0] == b""
    chapters: List[List[bytes]] = []
    for i, line in enumerate(lines[1:]):
        # a header: "<Book> <n>" (books may start with a digit: "1 Kings 3"),
        # preceded by an empty line (or the start) and not indented
        if line and not line.startswith(b" ") and line.rsplit(b" ", 1)[-1].isdigit() and \
                (i == 0 or lines[i] == b""):
            chapters.append([])
        chapters[-1].append(line)
    chs = [b"\n".join(c) + b"\n" for c in chapters]
    chs[-1] = chs[-1][:-1]  # the text's last newline was split off as an empty line
    assert len(chs) == KJV_CHAPTERS, len(chs)
    assert b"".join(chs) == out[1:]
    return chs


def kjv_split() -> Tuple[bytes, bytes]:
    """(train, heldout) bytes."""
    chs = kjv_chapters()
    train = b"".join(c for i, c in enumerate(chs) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1)
    held = b"".join(c for i, c in enumerate(chs) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1)
    return train, held


def heldout_path() -> str:
    return os.path.join(KJV_DIR, "heldout.txt")


def load_heldout() -> bytes:
    with open(heldout_path(), "rb") as f:
        return f.read()


# --------------------------------------------------------------- passkey --

FILLER = ["The grass is green. ", "The sky is blue. ", "The sun is yellow. ", "Here we go. ",
          "There and back again. "]
QUESTION = "What is the pass key? The pass key is"
EVAL_SEED = 7
EVAL_LENGTHS = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
EVAL_TRIALS = 20
M64 = (1 << 64) - 1


def key_line(key: int) -> str:
    return f"The pass key is {key}. Remember it. {key} is the pass key. "


def answer(key: int) -> str:
    return f" {key}"


def filler_count(length: int) -> int:
    """n: the most filler sentences for which the prompt fits in length bytes."""
    fixed = len(key_line(10000)) + len(QUESTION)
    if length < fixed:
        raise ValueError(f"passkey length {length} < {fixed}")
    # one full cycle of the five sentences is 91 bytes
    cyc = sum(len(s) for s in FILLER)
    n = (length - fixed) // cyc * len(FILLER)
    while fixed + sum(len(FILLER[i % 5]) for i in range(n + 1)) <= length:
        n += 1
    return n


def passkey_prompt(length: int, key: int, k: int) -> str:
    n = filler_count(length)
    assert 0 <= k <= n and 10000 <= key <= 99999
    s = [FILLER[i % 5] for i in range(n)]
    p = "".join(s[:k]) + key_line(key) + "".join(s[k:]) + QUESTION
    assert len(p) <= length
    return p


class SplitMix64:
    def __init__(self, state: int):
        self.state = state & M64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def eval_case(length: int, trial: int, seed: int = EVAL_SEED) -> dict:
    """The evaluation prompt (length, trial): see the module doc."""
    rng = SplitMix64(((seed * 0x100000001B3 + length) * 0x100000001B3 + trial) & M64)
    n = filler_count(length)
    key = 10000 + rng.next() % 90000
    k = rng.next() % (n + 1)
    p = passkey_prompt(length, key, k)
    return {"length": length, "trial": trial, "key": key, "n": n, "k": k, "answer": answer(key),
            "prompt_bytes": len(p), "sha256": hashlib.sha256(p.encode()).hexdigest(), "prompt": p}


def train_case(rng: random.Random, length: int) -> Tuple[str, str]:
    """A training prompt of at most length bytes and its answer."""
    n = filler_count(length)
    key = rng.randint(10000, 99999)
    return passkey_prompt(length, key, rng.randint(0, n)), answer(key)


# ------------------------------------------------------------------ main --

def write_all():
    os.makedirs(KJV_DIR, exist_ok=True)
    os.makedirs(PASSKEY_DIR, exist_ok=True)
    train, held = kjv_split()
    with open(heldout_path(), "wb") as f:
        f.write(held)
    chs = kjv_chapters()
    meta = {
        "source": "Debian bible-kjv-text 4.38, `bible -l10000 Genesis1:1-Revelation22:21`",
        "full_bytes": KJV_BYTES, "chapters": len(chs),
        "full_sha256": hashlib.sha256(b"\n" + b"".join(chs)).hexdigest(),
        "split": "chapter i (0-based, book order) is held out when i % 20 == 19",
        "train_bytes": len(train), "train_sha256": hashlib.sha256(train).hexdigest(),
        "heldout_bytes": len(held), "heldout_sha256": hashlib.sha256(held).hexdigest(),
        "heldout_chapters": [c.split(b"\n", 1)[0].decode() for i, c in enumerate(chs)
                             if i % HELDOUT_EVERY == HELDOUT_EVERY - 1],
    }
    with open(os.path.join(KJV_DIR, "split.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    with open(os.path.join(PASSKEY_DIR, "passkey_eval.jsonl"), "w") as f:
        for L in EVAL_LENGTHS:
            for t in range(EVAL_TRIALS):
                c = eval_case(L, t)
                if L > 2048:
                    del c["prompt"]
                f.write(json.dumps(c, sort_keys=True) + "\n")
    with open(os.path.join(PASSKEY_DIR, "README.md"), "w") as f:
        f.write(PASSKEY_README)
    print(f"train {len(train)} bytes, heldout {len(held)} bytes ({len(meta['heldout_chapters'])} chapters)")


PASSKEY_README = """# Passkey evaluation prompts

`passkey_eval.jsonl`: one JSON object a line, for each length in
256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536 bytes and trials 0..19:
`length` (the budget), `trial`, `key` (five digits), `n` (filler sentences),
`k` (filler sentences before the key line), `answer` (" NNNNN"),
`prompt_bytes`, `sha256` (of the prompt's bytes) and, up to 2048, `prompt`.

The exact template and the SplitMix64 draw that produce them are in
`testdata/reference/data.py` (module doc); `data.py --check` verifies this
file. A model is right on a prompt when greedy decoding of 6 bytes after
the prompt (from an empty state) gives `answer`.
"""


def check():
    train, held = kjv_split()
    assert load_heldout() == held, "heldout.txt differs from the package's text"
    with open(os.path.join(PASSKEY_DIR, "passkey_eval.jsonl")) as f:
        for line in f:
            c = json.loads(line)
            d = eval_case(c["length"], c["trial"])
            for k, v in c.items():
                assert d[k] == v, (c["length"], c["trial"], k)
    print("ok")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    check() if a.check else write_all()
