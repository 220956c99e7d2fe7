#!/usr/bin/python3
"""Regenerate the quant golden files from an independent numpy/torch model
of ggml's reference quantisers.

    /usr/bin/python3 quant/testdata/gen_golden.py     (from the module root)
or  go test ./quant -run TestGolden -update           (runs this script)

For each case it writes golden/<case>.f32 (the input, little-endian float32)
and, per type, golden/<case>.<type> (the encoded bytes) or, where Encode must
refuse the input, golden/<case>.<type>.err holding the text the error must
contain ("value 17", the index of the offending value).

Everything is computed in float32 exactly as ggml's C does
(quantize_row_q8_0_ref / quantize_row_q4_0_ref in ggml-quants.c); f16 uses
numpy's float32->float16 cast (round to nearest even), bf16 uses torch's.
"""
import os
import numpy as np
import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
F32 = np.float32
QK = 32


def f16_bits(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def is_f16_inf(bits):
    return (int(bits) & 0x7FFF) == 0x7C00


def enc_f16(x):
    h = f16_bits(x)
    for i, b in enumerate(h):
        if is_f16_inf(b):
            return None, i
    return h.astype("<u2").tobytes(), None


def enc_bf16(x):
    t = torch.from_numpy(x.copy()).to(torch.bfloat16)
    h = t.view(torch.int16).numpy().view(np.uint16)
    for i, b in enumerate(h):
        if (int(b) & 0x7FFF) == 0x7F80:
            return None, i
    return h.astype("<u2").tobytes(), None


def round_away(v):
    """C roundf on float32 values, done exactly in float64."""
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def enc_q8_0(x):
    out = bytearray()
    for b in range(len(x) // QK):
        blk = x[b * QK:(b + 1) * QK]
        amax = F32(np.max(np.abs(blk)))
        d = F32(amax / F32(127))
        sd = f16_bits(d)
        if is_f16_inf(sd):
            return None, b * QK + int(np.argmax(np.abs(blk)))
        with np.errstate(over="ignore", divide="ignore"):
            iid = F32(F32(1) / d) if d != 0 else F32(0)
        if np.isinf(iid):
            q = np.zeros(QK, dtype=np.int64)  # ggml: undefined; ours: 0
        else:
            q = round_away((blk * iid).astype(np.float32)).astype(np.int64)
        out += sd.astype("<u2").tobytes()
        out += bytes((q & 0xFF).astype(np.uint8))
    return bytes(out), None


def enc_q4_0(x):
    out = bytearray()
    for b in range(len(x) // QK):
        blk = x[b * QK:(b + 1) * QK]
        a = np.abs(blk)
        amax = F32(np.max(a))
        # ggml keeps the first strictly largest |x|, starting from max = +0.
        m = F32(0) if amax == 0 else blk[int(np.argmax(a))]
        d = F32(m / F32(-8))
        sd = f16_bits(d)
        if is_f16_inf(sd):
            return None, b * QK + int(np.argmax(a))
        with np.errstate(over="ignore", divide="ignore"):
            iid = F32(F32(1) / d) if d != 0 else F32(0)
        if np.isinf(iid):
            q = np.zeros(QK, dtype=np.int64)
        else:
            v = ((blk * iid).astype(np.float32) + F32(8.5)).astype(np.float32)
            q = np.minimum(15, np.trunc(v.astype(np.float64)).astype(np.int64))
        lo, hi = q[:16], q[16:]
        out += sd.astype("<u2").tobytes()
        out += bytes(((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8))
    return bytes(out), None


def cases():
    rng = np.random.default_rng(20240611)
    c = {}
    c["normal"] = rng.standard_normal(4 * QK).astype(F32)
    c["uniform"] = rng.uniform(-1, 1, 2 * QK).astype(F32)
    scales = np.repeat(F32([1e-6, 1e-3, 1.0, 300.0]), QK)
    c["mixed_scales"] = (rng.standard_normal(4 * QK) * scales).astype(F32)
    # Per-element magnitudes from 1e-9 to 1e4 inside each block.
    c["mixed_elements"] = (rng.standard_normal(2 * QK) * 10.0 ** rng.uniform(-9, 4, 2 * QK)).astype(F32)
    z = np.zeros(2 * QK, dtype=F32)
    z[QK:] = -0.0
    c["zeros"] = z
    # Ties: block 0 has d = 1 for Q8_0 (amax 127) and holds k+0.5;
    # block 1 has d = 1 for Q4_0 (max = -8) and holds k+0.5 in [-8, 8].
    t0 = np.arange(QK, dtype=F32) - F32(15.5)
    t0[0] = 127
    t1 = (np.arange(QK, dtype=F32) % 16) - F32(7.5)
    t1[5] = -8
    t1[6] = 8
    c["ties"] = np.concatenate([t0, t1]).astype(F32)
    # Equal magnitudes of both signs: the first one sets the Q4_0 scale.
    e = np.zeros(2 * QK, dtype=F32)
    e[3], e[9] = 2.0, -2.0
    e[QK + 3], e[QK + 9] = -2.0, 2.0
    e[QK + 10] = 1.0
    c["sign_ties"] = e
    # Subnormal float32 values, values whose scale is an f16 subnormal or
    # rounds to f16 zero, and a block whose 1/d overflows float32.
    tiny = np.zeros(4 * QK, dtype=F32)
    tiny[:QK] = rng.standard_normal(QK).astype(F32) * F32(1e-40)
    tiny[QK:2 * QK] = rng.standard_normal(QK).astype(F32) * F32(1e-5)
    tiny[2 * QK:3 * QK] = rng.standard_normal(QK).astype(F32) * F32(2e-6)
    tiny[3 * QK:] = rng.uniform(-1, 1, QK).astype(F32) * F32(2.0 ** -140)
    c["tiny"] = tiny
    # Near f16's top: fine for f16, bf16, Q8_0 and Q4_0.
    c["f16_top"] = (rng.uniform(-1, 1, QK) * 65504).astype(F32)
    # Large blocks: amax just below each scale's overflow threshold, then
    # above it (an error naming the index of the largest value).
    big = rng.uniform(-1, 1, 2 * QK).astype(F32) * F32(5e5)
    big[7] = F32(524159.97)  # Q4_0 scale 65519.996 -> f16 65504: still fine
    c["big_q4_ok"] = big
    big8 = rng.uniform(-1, 1, QK).astype(F32) * F32(8e6)
    big8[12] = F32(-8.32e6)  # Q8_0 scale 65511.8: fine; Q4_0 overflows
    c["big_q8_ok"] = big8
    over = rng.uniform(-1, 1, 2 * QK).astype(F32)
    over[QK + 17] = F32(8.33e6)  # Q8_0 overflows at index 49
    c["overflow"] = over
    return c


ENC = {"f16": enc_f16, "bf16": enc_bf16, "q8_0": enc_q8_0, "q4_0": enc_q4_0}


def main():
    os.makedirs(HERE, exist_ok=True)
    for name in os.listdir(HERE):
        os.remove(os.path.join(HERE, name))
    for name, x in cases().items():
        x = np.ascontiguousarray(x, dtype=F32)
        assert np.all(np.isfinite(x))
        with open(os.path.join(HERE, name + ".f32"), "wb") as f:
            f.write(x.astype("<f4").tobytes())
        for t, enc in ENC.items():
            data, bad = enc(x)
            if data is None:
                with open(os.path.join(HERE, "%s.%s.err" % (name, t)), "w") as f:
                    f.write("value %d\n" % bad)
            else:
                with open(os.path.join(HERE, "%s.%s" % (name, t)), "wb") as f:
                    f.write(data)


if __name__ == "__main__":
    main()
