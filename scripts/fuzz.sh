#!/usr/bin/env bash
# Runs the fuzz targets of the given packages (default: every package) for
# a short while each ($FUZZTIME, default 10s). New crashers land in the
# package's testdata/fuzz/<Target>/ as Go writes them; `go test` then runs
# them as regression tests.
set -euo pipefail
t=${FUZZTIME:-10s}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
for pkg in $(go list "${pkgs[@]}"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
    echo "== $pkg $f ($t)"
    # Each input that adds coverage is minimized, by default for up to a
    # minute, and the executions minimizing takes are not counted until it
    # ends: with seeds of a few kilobytes a 5 s run showed 8 executions. A
    # bound on the minimizing keeps the time for fuzzing.
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime "${FUZZMINIMIZETIME:-100x}" "$pkg"
  done
done
