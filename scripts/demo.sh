#!/usr/bin/env bash
# The main job, end to end on this machine: build the two commands, convert a
# MemMamba checkpoint (a test fixture: random weights, so its text is noise)
# to int8, inspect and verify the file, generate from it, write its logits
# and Note Block trace, and score a text file.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_DIR:-$(mktemp -d)}
go build -o bin/ ./cmd/...
echo "== mmconvert testdata/models/memmamba-priority -> int8"
./bin/mmconvert testdata/models/memmamba-priority -o "$out/memmamba.int8.mmq" --type int8 --force
./bin/mmconvert verify "$out/memmamba.int8.mmq"
./bin/mmconvert inspect "$out/memmamba.int8.mmq" | sed -n 1,12p
echo "== mmrun generate (greedy, 64 tokens)"
./bin/mmrun generate -m "$out/memmamba.int8.mmq" -p "In the beginning " -n 64 --temp 0 | od -c | sed -n 1,5p
echo "== mmrun logits with the Note Block trace"
./bin/mmrun logits -m "$out/memmamba.int8.mmq" --text "The notes were few." --out "$out/logits.npy" --trace "$out/trace.json"
ls -l "$out/logits.npy" "$out/trace.json"
echo "== mmrun score"
head -c 65536 README.md > "$out/text.txt"
./bin/mmrun score -m "$out/memmamba.int8.mmq" "$out/text.txt"
echo "== GGUF export"
./bin/mmconvert "$out/memmamba.int8.mmq" -o "$out/memmamba.int8.gguf" --to gguf --type int8 --force -q
ls -l "$out/memmamba.int8.gguf"
echo "demo files are in $out"
