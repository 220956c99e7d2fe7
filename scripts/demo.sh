#!/usr/bin/env bash
# The main job, end to end on this machine, native backend, nothing else to
# install: build the two commands, convert the trained models (testdata/
# trained/) to int8, generate a paragraph from the text model, score the
# held-out text, look for a passkey hidden in 1k- and 16k-byte prompts, and print
# the speed. Models not trained yet are skipped with a note; the random-
# weight MemMamba fixture stands in so that every step still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_DIR:-$(mktemp -d)}
go build -o bin/ ./cmd/...

text_model=""
for m in memmamba-kjv mamba-kjv; do
  if [ -f "testdata/trained/$m/model.safetensors" ]; then text_model=$m; break; fi
done
if [ -n "$text_model" ]; then
  echo "== mmconvert testdata/trained/$text_model -> int8"
  ./bin/mmconvert "testdata/trained/$text_model" -o "$out/text.int8.mmq" --type int8 --force
  echo "== mmrun generate (a paragraph, temperature 0.7, seed 1)"
  ./bin/mmrun generate -m "$out/text.int8.mmq" -p "And it came to pass, when " -n 300 --temp 0.7 --seed 1
  echo
  echo "== mmrun score on the held-out King James text"
  ./bin/mmrun score -m "$out/text.int8.mmq" testdata/trained/kjv/heldout.txt -q
else
  echo "(no trained text model under testdata/trained yet: using the random-weight fixture)"
  ./bin/mmconvert testdata/models/memmamba-priority -o "$out/text.int8.mmq" --type int8 --force
  ./bin/mmrun generate -m "$out/text.int8.mmq" -p "In the beginning " -n 64 --temp 0 | od -c | sed -n 1,3p
fi

pk_models=""
for m in memmamba-passkey-selective mamba-passkey; do
  if [ -f "testdata/trained/$m/model.safetensors" ]; then pk_models="$pk_models $m"; fi
done
if [ -n "$pk_models" ]; then
  for m in $pk_models; do
    echo "== passkey retrieval with $m (int8): a key hidden in 1k- and 16k-byte prompts"
    ./bin/mmconvert "testdata/trained/$m" -o "$out/$m.int8.mmq" --type int8 --force -q
    ./bin/mmrun passkey -m "$out/$m.int8.mmq" --lengths 1k,16k --trials 5 -v
  done
  if [ -f "$out/memmamba-passkey-selective.int8.mmq" ] && [ -f "$out/mamba-passkey.int8.mmq" ]; then
    echo "== mmrun memory: how long each passkey model remembers a token of a 16 KiB prompt ($out/memory-passkey.html)"
    ./bin/mmrun memory -m "$out/mamba-passkey.int8.mmq" -m "$out/memmamba-passkey-selective.int8.mmq" \
      testdata/trained/passkey_eval/memory_prompt.txt --html "$out/memory-passkey.html"
  fi
else
  echo "(no trained passkey model under testdata/trained yet: passkey prompts on the text model, expect misses)"
  ./bin/mmrun passkey -m "$out/text.int8.mmq" --lengths 2k --trials 2 -v
fi

if [ -f testdata/trained/memmamba-kjv/model.safetensors ] && [ -f testdata/trained/mamba-kjv/model.safetensors ]; then
  for m in memmamba-kjv mamba-kjv; do
    ./bin/mmconvert "testdata/trained/$m" -o "$out/$m.int8.mmq" --type int8 --force -q
  done
  echo "== mmrun trace: what memmamba-kjv's Note Blocks did with the held-out text ($out/trace.html)"
  ./bin/mmrun trace -m "$out/memmamba-kjv.int8.mmq" testdata/trained/kjv/heldout.txt --html "$out/trace.html"
  echo "== mmrun memory: how long each model remembers a token ($out/memory.html)"
  ./bin/mmrun memory -m "$out/mamba-kjv.int8.mmq" -m "$out/memmamba-kjv.int8.mmq" testdata/trained/kjv/heldout.txt \
    --max-k 256 --html "$out/memory.html"
fi

echo "== speed (mmrun bench, native, int8)"
./bin/mmrun bench -m "$out/text.int8.mmq" --prefill 512 --decode 128 --runs 3
echo "demo files are in $out"
