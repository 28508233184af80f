#!/usr/bin/env bash
# The README's test command: every tier, in order of cost. Builds the packs first (skipped when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/packs.sh
echo "== python toolkit (pytest)"
/usr/bin/python3 -m pytest -q model/tests
