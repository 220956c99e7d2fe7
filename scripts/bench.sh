#!/usr/bin/env bash
# The whole-model numbers of BENCHMARKS.md.
#
#   scripts/bench.sh models OUT.jsonl   # every shape x type x threads, native and ONNX Runtime, one JSON line each
#   scripts/bench.sh noteblock          # mamba-130m and memmamba-130m alternated, 4 rounds (int8, f32)
#   scripts/bench.sh peer               # mmrun bench and llama.cpp's llama-bench on the same mamba-130m, alternated
#
# peer: the synthetic mamba-130m at each of PEER_TYPES (default "int8 f32
# f16") as a model file and as the GGUF exported from it (the same weights,
# bit for bit), PEER_ROUNDS rounds (default 4) of `mmrun bench` and
# `llama-bench` (third_party/llama.cpp, `make llamacpp`), 2 threads, prefill
# PEER_PREFILL (512) and decode PEER_DECODE (128) tokens, the order swapped
# every round; prints each round and the medians' ratios mmrun / llama.cpp.
# PEER_MODEL=NAME uses $BENCH_DIR/NAME.<type>.mmq instead (any plain Mamba).
# PEER_SIMD=avx2 runs both at the AVX2 level: mmrun with MMRUN_SIMD=avx2 and
# llama-bench from a folder that holds only llama.cpp's AVX2 CPU backend
# (libggml-cpu-haswell.so; ggml loads the best backend it finds beside the
# executable); PEER_SIMD=avx512 runs mmrun with MMRUN_SIMD=avx512 against
# the backend llama.cpp picks itself (zen4, skylakex, ... on AVX-512 CPUs).
#
# Synthetic models are written once to $BENCH_DIR (default /tmp/mmbench).
# The ONNX Runtime rows need `make ort` first. Pause anything else running:
# on a shared machine the same command varies by 10-25% from one minute to
# the next.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/tmp/mmbench}
mkdir -p "$dir"
go build -o bin/ ./cmd/...
# synth writes the synthetic models named (shape.type) that are missing.
synth() {
  for s in $1; do
    for t in $2; do
      [ -f "$dir/$s.$t.mmq" ] || bin/mmconvert --synthetic "$s" -o "$dir/$s.$t.mmq" --type "$t" -q
    done
  done
}
tag() { python3 -c "import json,sys; r=json.load(sys.stdin); r.update(json.loads(sys.argv[1])); print(json.dumps(r))" "$1"; }
case "${1:-}" in
models)
  out=${2:?output file}
  synth "mamba-130m memmamba-130m" "f32 f16 int8 int4"
  : > "$out"
  for s in mamba-130m memmamba-130m; do
    for t in int8 f32 f16 int4; do
      for th in 2 1; do
        bin/mmrun bench -m "$dir/$s.$t.mmq" --threads $th --prefill 512 --decode 128 --runs 5 --json |
          tag "{\"shape\":\"$s\",\"type\":\"$t\",\"backend\":\"native\"}" >> "$out"
      done
    done
  done
  for t in int8 f32; do
    for th in 2 1; do
      bin/mmrun bench -m "$dir/mamba-130m.$t.mmq" --threads $th --backend ort --prefill 512 --decode 128 --runs 3 --json |
        tag "{\"shape\":\"mamba-130m\",\"type\":\"$t\",\"backend\":\"ort\"}" >> "$out"
    done
  done
  ;;
noteblock)
  synth "mamba-130m memmamba-130m" "f32 f16 int8 int4"
  for t in int8 f32; do
    for i in 1 2 3 4; do
      for s in mamba-130m memmamba-130m; do
        bin/mmrun bench -m "$dir/$s.$t.mmq" --threads 2 --prefill 512 --decode 64 --runs 3 --json |
          python3 -c "import json,sys; r=json.load(sys.stdin); print('$t $s $i', round(r['prefill_tok_per_s']['Median'],1), round(r['decode_tok_per_s']['Median'],1))"
      done
    done
  done
  ;;
peer)
  llb=third_party/llama.cpp/bin/llama-bench
  [ -x "$llb" ] || { echo "bench.sh peer: no $llb: run make llamacpp first" >&2; exit 1; }
  case "${PEER_SIMD:-}" in
  "") ;;
  avx2)
    export MMRUN_SIMD=avx2
    one="$dir/llama-haswell"
    rm -rf "$one" && mkdir -p "$one"
    lib=$(cd third_party/llama.cpp/lib && pwd)
    cp "$lib/llama-bench" "$one/"
    for f in "$lib"/lib*.so; do
      case "$(basename "$f")" in libggml-cpu-*) ;; *) ln -s "$f" "$one/" ;; esac
    done
    ln -s "$lib/libggml-cpu-haswell.so" "$one/"
    llb="$one/llama-bench"
    ;;
  avx512) export MMRUN_SIMD=avx512 ;;
  *) echo "bench.sh peer: PEER_SIMD is avx2 or avx512" >&2; exit 2 ;;
  esac
  model=${PEER_MODEL:-mamba-130m}
  rounds=${PEER_ROUNDS:-4}
  pp=${PEER_PREFILL:-512}
  tg=${PEER_DECODE:-128}
  [ -n "${PEER_MODEL:-}" ] || synth mamba-130m "${PEER_TYPES:-int8 f32 f16}"
  res="$dir/peer.$$.txt"
  : > "$res"
  for t in ${PEER_TYPES:-int8 f32 f16}; do
    mmq="$dir/$model.$t.mmq"
    gg="$dir/$model.$t.gguf"
    [ -f "$mmq" ] || { echo "bench.sh peer: no $mmq" >&2; exit 1; }
    [ -f "$gg" ] || bin/mmconvert "$mmq" -o "$gg" --to gguf --type "$t" -q
    for i in $(seq 1 "$rounds"); do
      order="mmrun llama"
      [ $((i % 2)) -eq 0 ] && order="llama mmrun"
      for e in $order; do
        if [ "$e" = mmrun ]; then
          bin/mmrun bench -m "$mmq" --threads 2 --prefill "$pp" --decode "$tg" --runs 3 --json |
            python3 -c "import json,sys; r=json.load(sys.stdin); print('$t', $i, 'mmrun', r['prefill_tok_per_s']['Median'], r['decode_tok_per_s']['Median'])"
        else
          "$llb" -m "$gg" -t 2 -p "$pp" -n "$tg" -r 3 -o json 2>/dev/null |
            python3 -c "import json,sys; r=json.load(sys.stdin); ts={(x['n_prompt']>0): x['avg_ts'] for x in r}; print('$t', $i, 'llama.cpp', ts[True], ts[False])"
        fi
      done
    done | tee -a "$res"
  done
  python3 - "$res" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    t, _, eng, pp, tg = line.split()
    rows.setdefault((t, eng), []).append((float(pp), float(tg)))
types = sorted({t for t, _ in rows}, key=lambda t: ["int8", "f32", "f16", "bf16", "int4"].index(t) if t in ["int8", "f32", "f16", "bf16", "int4"] else 9)
print(f"{'type':5} {'mmrun pp':>9} {'llama pp':>9} {'ratio':>6}   {'mmrun tg':>9} {'llama tg':>9} {'ratio':>6}   (tok/s, medians of the rounds)")
for t in types:
    m, l = rows.get((t, "mmrun")), rows.get((t, "llama.cpp"))
    if not m or not l:
        continue
    mp, mt = statistics.median(x[0] for x in m), statistics.median(x[1] for x in m)
    lp, lt = statistics.median(x[0] for x in l), statistics.median(x[1] for x in l)
    print(f"{t:5} {mp:9.1f} {lp:9.1f} {mp / lp:6.2f}   {mt:9.1f} {lt:9.1f} {mt / lt:6.2f}")
PY
  rm -f "$res"
  ;;
*)
  echo "usage: scripts/bench.sh models OUT.jsonl | noteblock | peer" >&2
  exit 2
  ;;
esac
