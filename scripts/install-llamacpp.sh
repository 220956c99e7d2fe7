#!/usr/bin/env bash
# Installs llama.cpp, as a test dependency, into third_party/llama.cpp/:
#
#   lib/      llama.cpp's shared libraries: libllama, libggml, libggml-base,
#             libllama-common and the CPU backends, one per instruction set
#             (libggml-cpu-<level>.so; ggml loads the best one this CPU runs
#             at start-up, GGML_BACKEND_PATH=<one .so> forces one)
#   include/  llama.h and ggml's headers of the same release
#   bin/      mmllama, built here from testdata/llamacpp/mmllama.c with the
#             machine's C compiler against those headers and libraries, and
#             llama-bench (a link to lib/llama-bench: ggml looks for its CPU
#             backends beside the executable), built with the machine's C++
#             compiler from the release's tools/llama-bench against
#             libllama-common (skipped, with a note, without g++)
#   src/      the part of the release's source that llama-bench needs
#             (common/, vendor/, tools/llama-bench/)
#   VERSION   the npm package version, llama.cpp's release and commit
#
# The only downloads are two `npm pack`s from the npm registry:
# @node-llama-cpp/linux-<arch>@$NLC_VERSION ships the prebuilt libraries
# (bins/linux-<arch>/; no headers, no executables), node-llama-cpp@$NLC_VERSION
# ships the release's source as llama/gitRelease.bundle (a git bundle, cloned
# here for its headers). LLAMACPP_TARBALLS=<dir> takes the two .tgz files
# from a folder instead (a machine without the registry).
#
# Idempotent: when VERSION records this version the download is skipped, and
# mmllama is rebuilt only when mmllama.c is newer than it. Prints the folder
# on stdout.
set -euo pipefail

NLC_VERSION="${NLC_VERSION:-3.22.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/third_party/llama.cpp"
stamp="$dest/VERSION"
csrc="$root/testdata/llamacpp/mmllama.c"
say() { echo "install-llamacpp.sh: $*" >&2; }

case "$(uname -s)" in
  Linux) ;;
  *) say "only Linux is supported (got $(uname -s))"; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) say "no @node-llama-cpp build for architecture $(uname -m)"; exit 1 ;;
esac

# installed reports whether this version's libraries and headers are there.
installed() {
  [ -f "$stamp" ] && head -n1 "$stamp" | grep -qx "node-llama-cpp $NLC_VERSION" &&
    [ -f "$dest/include/llama.h" ] && ls "$dest"/lib/libllama*.so >/dev/null 2>&1
}

# fetch puts the tarball of npm package $1@$NLC_VERSION into $tmp and prints
# its path.
fetch() {
  local pkg="$1" base
  base="$(echo "$pkg" | sed 's#^@##; s#/#-#')-$NLC_VERSION.tgz"
  if [ -n "${LLAMACPP_TARBALLS:-}" ] && [ -f "$LLAMACPP_TARBALLS/$base" ]; then
    echo "$LLAMACPP_TARBALLS/$base"
    return
  fi
  command -v npm >/dev/null || { say "npm is needed (apt-get install npm)"; exit 1; }
  say "fetching $pkg@$NLC_VERSION from the npm registry"
  (cd "$tmp" && npm pack --silent "$pkg@$NLC_VERSION" >/dev/null)
  [ -f "$tmp/$base" ] || { say "npm pack $pkg@$NLC_VERSION produced no $base"; exit 1; }
  echo "$tmp/$base"
}

if ! installed; then
  command -v git >/dev/null || { say "git is needed (apt-get install git)"; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  bins="$(fetch "@node-llama-cpp/linux-$arch")"
  srcpkg="$(fetch node-llama-cpp)"

  new="$tmp/new"
  mkdir -p "$new/lib" "$new/include" "$tmp/x"
  tar -xzf "$bins" -C "$tmp/x" --wildcards "package/bins/linux-$arch/*.so*"
  n=0
  for so in "$tmp/x/package/bins/linux-$arch"/*.so*; do
    [ -f "$so" ] || continue
    cp -L "$so" "$new/lib/"
    n=$((n + 1))
  done
  ls "$new"/lib/libllama*.so >/dev/null 2>&1 || { say "@node-llama-cpp/linux-$arch@$NLC_VERSION has no libllama*.so"; exit 1; }

  tar -xzf "$srcpkg" -C "$tmp/x" package/llama/gitRelease.bundle package/llama/binariesGithubRelease.json
  git clone --quiet "$tmp/x/package/llama/gitRelease.bundle" "$tmp/src" 2>/dev/null ||
    { say "cloning node-llama-cpp@$NLC_VERSION's llama/gitRelease.bundle failed"; exit 1; }
  cp "$tmp/src/include/"*.h "$tmp/src/ggml/include/"*.h "$new/include/"
  mkdir -p "$new/src"
  git -C "$tmp/src" archive HEAD common vendor tools/llama-bench | tar -x -C "$new/src"
  release="$(sed -n 's/.*"release": *"\([^"]*\)".*/\1/p' "$tmp/x/package/llama/binariesGithubRelease.json")"
  commit="$(git -C "$tmp/src" rev-parse HEAD)"
  {
    echo "node-llama-cpp $NLC_VERSION"
    echo "llama.cpp release ${release:-unknown}"
    echo "llama.cpp source commit $commit (node-llama-cpp's gitRelease.bundle)"
  } >"$new/VERSION"

  # Swap the new tree in whole, so an interrupted run leaves the old one or
  # nothing, never half of each.
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest.old"
  [ -e "$dest" ] && mv "$dest" "$dest.old"
  mv "$new" "$dest"
  rm -rf "$dest.old"
  say "installed llama.cpp ${release:-?} ($n libraries, linux-$arch) from node-llama-cpp $NLC_VERSION"
else
  say "llama.cpp from node-llama-cpp $NLC_VERSION already installed"
fi

# mmllama: built when missing or older than its source.
exe="$dest/bin/mmllama"
if [ ! -x "$exe" ] || [ "$csrc" -nt "$exe" ]; then
  cc="${CC:-cc}"
  command -v "$cc" >/dev/null || { say "a C compiler is needed (apt-get install gcc)"; exit 1; }
  mkdir -p "$dest/bin"
  libllama="$(basename "$(ls "$dest"/lib/libllama.*so "$dest"/lib/libllama.so 2>/dev/null | grep -v common | head -n1)")"
  libggml="$(basename "$(ls "$dest"/lib/libggml.*so "$dest"/lib/libggml.so 2>/dev/null | head -n1)")"
  "$cc" -std=c11 -O2 -Wall -Wextra -o "$exe.tmp" "$csrc" -I"$dest/include" -L"$dest/lib" \
    -l:"$libllama" -l:"$libggml" -l:libggml-base.so -lm -Wl,-rpath,'$ORIGIN/../lib'
  mv -f "$exe.tmp" "$exe"
  say "built $exe"
fi
# llama-bench: built when missing (it needs C++17 and libllama-common).
bench="$dest/lib/llama-bench"
if [ ! -x "$bench" ]; then
  cxx="${CXX:-g++}"
  if command -v "$cxx" >/dev/null && [ -d "$dest/src/tools/llama-bench" ]; then
    libllama="$(basename "$(ls "$dest"/lib/libllama.*so "$dest"/lib/libllama.so 2>/dev/null | head -n1)")"
    libggml="$(basename "$(ls "$dest"/lib/libggml.*so "$dest"/lib/libggml.so 2>/dev/null | head -n1)")"
    say "building llama-bench (about 20 s of CPU)"
    "$cxx" -std=c++17 -O2 -DNDEBUG -o "$bench.tmp" "$dest/src/tools/llama-bench/main.cpp" \
      "$dest/src/tools/llama-bench/llama-bench.cpp" -I"$dest/src/tools/llama-bench" -I"$dest/src/common" \
      -I"$dest/src/vendor" -I"$dest/include" -L"$dest/lib" -l:libllama-common.so -l:"$libllama" \
      -l:"$libggml" -l:libggml-base.so -lpthread -Wl,-rpath,'$ORIGIN'
    mv -f "$bench.tmp" "$bench"
    ln -sfn ../lib/llama-bench "$dest/bin/llama-bench"
  else
    say "no $cxx or no llama-bench source: llama-bench not built (mmllama does not need it)"
  fi
fi
echo "$dest"
