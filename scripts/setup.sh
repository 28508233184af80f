#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine lacks for this project: Chromium and the Python toolkit's stack from
# apt (OpenBLAS, or Debian's torch runs on the reference BLAS, ~17x slower), then the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
for pkg in chromium firefox-esr xvfb xdotool python3-torch python3-onnx python3-numpy python3-pil python3-pytest libopenblas0-pthread; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" > /tmp/setup-apt.log 2>&1 || { tail -50 /tmp/setup-apt.log; exit 1; }
fi
npm ci --no-audit --no-fund
