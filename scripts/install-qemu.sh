#!/usr/bin/env bash
# Installs Debian's qemu-user (qemu-aarch64), which `make test-cross` runs
# the arm64 test binaries under, with apt-get, only when it is missing.
set -euo pipefail
if command -v qemu-aarch64 >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing qemu-user with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user >/dev/null
