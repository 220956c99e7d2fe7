#!/usr/bin/env bash
# Installs Debian's chromium, the headless browser that cmd/mmrun's
# TestTraceReportInBrowser loads a trace report in (apt-get). Idempotent:
# does nothing when the package is installed. Prints the browser's path.
set -euo pipefail
if ! dpkg -s chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing chromium with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
for p in /usr/lib/chromium/chromium /usr/bin/chromium; do
  if [ -x "$p" ]; then echo "$p"; exit 0; fi
done
echo "install-chromium.sh: chromium is installed but no binary was found" >&2
exit 1
