#!/usr/bin/env bash
# Runs fuzz targets for a short while each ($FUZZTIME, default 10s) and
# prints how many inputs each one ran: a line after each target, and a
# table of every target (package, target, execs, execs/sec, result) at
# the end. It exits 1 when a target failed, after running the others.
#
# Arguments: a package pattern (./format, ./convert/...) runs every target
# of those packages; PACKAGE:TARGET runs one target (for a package whose
# other targets should not run here, as ./engine:FuzzLoadState). No
# arguments: every target of every package.
#
# New crashers land in the package's testdata/fuzz/<Target>/ as Go writes
# them; `go test` then runs them as regression tests.
#
# $FUZZMINIMIZETIME (default 200x) bounds how long Go minimizes each new
# interesting input. With Go's default (60s) a worker that finds new
# coverage in a large input spends the rest of a short run minimizing it,
# and the executions it would have reported are lost: format's FuzzOpen
# showed 996 executions in 5 s that way, 45,000 with 200x.
set -uo pipefail
t=${FUZZTIME:-10s}
mt=${FUZZMINIMIZETIME:-200x}
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(./...)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# seconds converts Go's elapsed form (5s, 1m5s, 1h0m3s) to whole seconds.
seconds() {
  local e=$1 s=0
  [[ $e =~ ([0-9]+)h ]] && s=$((s + BASH_REMATCH[1] * 3600))
  [[ $e =~ ([0-9]+)m ]] && s=$((s + BASH_REMATCH[1] * 60))
  [[ $e =~ ([0-9]+)s$ ]] && s=$((s + BASH_REMATCH[1]))
  echo "$s"
}

rows=()
failed=0
for arg in "${args[@]}"; do
  pat=${arg%%:*}
  only=""
  [[ $arg == *:* ]] && only=${arg#*:}
  pkgs=$(go list "$pat") || { echo "fuzz.sh: no package $pat" >&2; exit 1; }
  for pkg in $pkgs; do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    targets=$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}')
    if [ -n "$only" ]; then
      if ! grep -qx "$only" <<<"$targets"; then
        echo "fuzz.sh: $pkg has no fuzz target $only" >&2
        exit 1
      fi
      targets=$only
    fi
    for f in $targets; do
      echo "== $pkg $f ($t)"
      status=ok
      for try in 1 2; do
        go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime "$mt" "$pkg" 2>&1 | tee "$log" && { status=ok; break; }
        status=FAIL
        # Go's coordinator can end a duration-bounded run with a bare
        # "context deadline exceeded" when a worker is still executing
        # as the time runs out (golang/go#75804): nothing failed, no input
        # was written. Such a run is tried once more; a real finding
        # writes its input ("Failing input written to") and fails at once.
        if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" &&
          ! grep -qE 'Failing input written to|panic:' "$log"; then
          echo "== $pkg $f: the run ended on Go's fuzz-time deadline race with nothing found; once more"
          continue
        fi
        break
      done
      [ "$status" = ok ] || failed=1
      line=$(grep -E '^fuzz: elapsed: [0-9hms]+, execs: [0-9]+' "$log" | tail -1)
      execs=0 secs=0
      if [ -n "$line" ]; then
        execs=$(sed -E 's/.*execs: ([0-9]+).*/\1/' <<<"$line")
        secs=$(seconds "$(sed -E 's/^fuzz: elapsed: ([0-9hms]+),.*/\1/' <<<"$line")")
      fi
      rate=$((execs / (secs > 0 ? secs : 1)))
      echo "== $pkg $f: $execs execs in ${secs}s, $rate/sec, $status"
      rows+=("$pkg $f $execs $rate $status")
    done
  done
done

echo
echo "fuzz summary ($t per target, minimization $mt):"
printf '%-48s %-22s %12s %10s %s\n' package target execs execs/sec result
for r in "${rows[@]}"; do
  # shellcheck disable=SC2086
  printf '%-48s %-22s %12s %10s %s\n' $r
done
exit $failed
