#!/usr/bin/env bash
# The builds a user can make that the host's own test run does not cover:
#   - the pure-Go kernels (-tags purego): go vet and the ops tests;
#   - arm64 (the pure-Go path, where the compiler may fuse multiply-adds):
#     go vet, then each package's test binary cross-compiled and run under
#     qemu-aarch64 from the package's folder (its testdata paths); of
#     the engine's tests a subset (the whole of them takes over 15 minutes
#     under emulation on two cores): f32 parity with the goldens, the
#     quantised types, prefill == steps, the fused decode step, state
#     round trips and concurrent sessions, about 35 s.
# Prints each step's time.
set -euo pipefail
GO="${GO:-go}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/install-qemu.sh"

step() { local t0=$SECONDS; "$@"; echo "  ($(( SECONDS - t0 )) s)" >&2; }

echo "purego: go vet, go test ./ops" >&2
step "$GO" vet -tags purego ./...
step "$GO" test -count=1 -tags purego ./ops

echo "arm64: go vet, tests under qemu-aarch64" >&2
step env GOARCH=arm64 "$GO" vet ./...
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
run() { # run PKG [test flags...]
  local pkg="$1"; shift
  GOARCH=arm64 "$GO" test -c -o "$bin/$pkg.test" "./$pkg"
  if ! (cd "$pkg" && qemu-aarch64 "$bin/$pkg.test" -test.count=1 "$@" >"$bin/$pkg.log" 2>&1); then
    cat "$bin/$pkg.log"
    echo "arm64 $pkg: FAIL" >&2
    return 1
  fi
  echo "arm64 $pkg: $(tail -1 "$bin/$pkg.log")" >&2
}
for pkg in ops quant arch format; do
  step run "$pkg"
done
step run engine -test.short -test.run 'TestParityF32|TestQuantisedTypes|TestPrefillEqualsSteps|TestFusedStep|TestStateRoundTrip|TestConcurrentSessions'
