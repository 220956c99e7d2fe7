#!/usr/bin/env bash
# Installs what the project's tests and tools need beyond Go, on a Debian
# machine, and only what is missing: the PyTorch reference's python3-torch,
# python3-numpy and python3-onnx (used with /usr/bin/python3).
# Go modules come from the Go module proxy on the first `go build`.
set -euo pipefail
need=()
for p in python3-torch python3-numpy python3-onnx; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
