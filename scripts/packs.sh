#!/usr/bin/env bash
# Builds the packs the tests and the demo use, unless they are already built from the current toolkit sources.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p packs
exec 9> packs/.lock
flock 9  # one builder at a time: a second caller waits, then finds the packs up to date
PY=/usr/bin/python3
stamp=$(cat model/*.py | sha256sum | cut -c1-16)
build() {  # name, command...
  local dir=$1; shift
  if [ "$(cat "packs/$dir/.source-stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "packs: building $dir"
    rm -rf "packs/$dir"
    "$@"
    echo "$stamp" > "packs/$dir/.source-stamp"
  fi
}
build toy $PY -m model.toy --out packs/toy
build small-random $PY -m model.random_pack --size small --out packs/small-random
