#!/usr/bin/env bash
# Installs ONNX Runtime's shared library (libonnxruntime.so.1) for this
# machine's architecture into third_party/onnxruntime/lib/, the folder the
# engine/ort package looks in after --ort-lib and MMRUN_ORT_LIB.
#
# The only download is `npm pack onnxruntime-node@$ORT_VERSION` from the npm
# registry: that tarball carries the official Linux builds under
# package/bin/napi-v*/linux/<arch>/. Idempotent: when the library is already
# there with the pinned version (recorded in VERSION next to it), it does
# nothing. Prints the library's path on stdout.
#
# ORT_VERSION must serve ONNX Runtime C API version 24 (what
# github.com/yalue/onnxruntime_go v1.27 asks for), so 1.24 or newer.
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.30.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/third_party/onnxruntime/lib"
lib="$dest/libonnxruntime.so.1"
stamp="$dest/VERSION"

if [ -f "$lib" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$ORT_VERSION" ]; then
  echo "onnxruntime $ORT_VERSION already installed" >&2
  echo "$lib"
  exit 0
fi

case "$(uname -s)" in
  Linux) ;;
  *) echo "install-ort.sh: only Linux is supported (got $(uname -s))" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-ort.sh: no onnxruntime-node build for architecture $(uname -m)" >&2; exit 1 ;;
esac

command -v npm >/dev/null || { echo "install-ort.sh: npm is needed (apt-get install npm)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetching onnxruntime-node@$ORT_VERSION from the npm registry" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tgz="$(ls "$tmp"/onnxruntime-node-*.tgz 2>/dev/null | head -n1)"
[ -n "$tgz" ] || { echo "install-ort.sh: npm pack produced no tarball" >&2; exit 1; }

# Extract only this architecture's Linux folder; tar keeps symlinks as links
# so a versioned name (libonnxruntime.so.1.x.y) behind the .so.1 link works.
mkdir -p "$tmp/x"
tar -xzf "$tgz" -C "$tmp/x" --wildcards "package/bin/napi-v*/linux/$arch/*"
dir="$(ls -d "$tmp"/x/package/bin/napi-v*/linux/"$arch" 2>/dev/null | sort -V | tail -n1)"
[ -n "$dir" ] || { echo "install-ort.sh: onnxruntime-node@$ORT_VERSION has no linux/$arch build" >&2; exit 1; }

src=""
for cand in "$dir/libonnxruntime.so.1" "$dir"/libonnxruntime.so.1.* "$dir/libonnxruntime.so"; do
  if [ -e "$cand" ]; then src="$cand"; break; fi
done
[ -n "$src" ] || { echo "install-ort.sh: no libonnxruntime.so* in $dir" >&2; exit 1; }
src="$(readlink -f "$src")"
case "$src" in
  "$tmp"/*) ;;
  *) echo "install-ort.sh: $src points outside the package" >&2; exit 1 ;;
esac

mkdir -p "$dest"
# cp -L follows links, so the installed file is a regular file; write to a
# temporary name first so an interrupted run never leaves a half library.
cp -L "$src" "$lib.tmp"
mv -f "$lib.tmp" "$lib"
echo "$ORT_VERSION" >"$stamp"
echo "installed onnxruntime $ORT_VERSION ($arch)" >&2
echo "$lib"
