#!/usr/bin/env bash
# The whole-model numbers of BENCHMARKS.md.
#
#   scripts/bench.sh models OUT.jsonl   # every shape x type x threads, native and ONNX Runtime, one JSON line each
#   scripts/bench.sh noteblock          # mamba-130m and memmamba-130m alternated, 4 rounds (int8, f32)
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
for s in mamba-130m memmamba-130m; do
  for t in f32 f16 int8 int4; do
    [ -f "$dir/$s.$t.mmq" ] || bin/mmconvert --synthetic "$s" -o "$dir/$s.$t.mmq" --type "$t" -q
  done
done
tag() { python3 -c "import json,sys; r=json.load(sys.stdin); r.update(json.loads(sys.argv[1])); print(json.dumps(r))" "$1"; }
case "${1:-}" in
models)
  out=${2:?output file}
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
  for t in int8 f32; do
    for i in 1 2 3 4; do
      for s in mamba-130m memmamba-130m; do
        bin/mmrun bench -m "$dir/$s.$t.mmq" --threads 2 --prefill 512 --decode 64 --runs 3 --json |
          python3 -c "import json,sys; r=json.load(sys.stdin); print('$t $s $i', round(r['prefill_tok_per_s']['Median'],1), round(r['decode_tok_per_s']['Median'],1))"
      done
    done
  done
  ;;
*)
  echo "usage: scripts/bench.sh models OUT.jsonl | noteblock" >&2
  exit 2
  ;;
esac
