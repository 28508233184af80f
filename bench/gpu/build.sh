#!/usr/bin/env bash
# Assemble .gpu-carry/ (git-ignored through .git/info/exclude), the folder the device run carries:
#   run.mjs            bench/gpu/webgpu-node.mjs bundled with src/captioner and transformers.js (rolldown)
#   node.xz            this machine's /usr/bin/node (it links only glibc and libstdc++)
#   ort-wasm-simd-threaded.asyncify.wasm  the wasm of onnxruntime-web/webgpu (whose JS is bundled into run.mjs)
#   node_modules/      webgpu (dawn.node, linux-x64 only),
#                      stubs for onnxruntime-node and sharp (transformers.js requires them; neither is used)
# Needs: npm install webgpu@0.6.2 in .gpu-carry once (see bench/gpu/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
C=.gpu-carry
mkdir -p $C/dist
test -d $C/node_modules/webgpu || (cd $C && flock /tmp/npm.lock npm install --no-save webgpu@0.6.2)

node_modules/.bin/rolldown bench/gpu/webgpu-node.mjs --platform node --format esm --no-codeSplitting \
  --external webgpu --external onnxruntime-node --external sharp --file $C/run.mjs
# transformers.js lists no devices when the ORT module is injected (globalThis[Symbol.for('onnxruntime')]), so
# device 'webgpu' would be refused: list webgpu and wasm as its browser build does.
node -e '
const fs = require("fs"); const f = process.argv[1]; let s = fs.readFileSync(f, "utf8");
const a = "if (ORT_SYMBOL in globalThis) ONNX = globalThis[ORT_SYMBOL];";
if (!s.includes(a)) throw new Error("transformers.js ORT_SYMBOL branch not found");
s = s.replace(a, "if (ORT_SYMBOL in globalThis) { ONNX = globalThis[ORT_SYMBOL]; supportedDevices.push(\"webgpu\", \"wasm\"); defaultDevices = [\"wasm\"]; }");
fs.writeFileSync(f, s);' $C/run.mjs

# onnxruntime-web/webgpu (ort.webgpu.bundle.min.mjs, its wasm loader included) is bundled into run.mjs; the wasm
# binary it needs goes beside it (the script reads it into ort.env.wasm.wasmBinary)
cp node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm $C/
# the Node build of onnxruntime-web (the WASM reference process; bundled too) loads these two from beside run.mjs
cp node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm $C/
for p in onnxruntime-node sharp; do
  mkdir -p $C/node_modules/$p
  echo "{\"name\":\"$p\",\"version\":\"0.0.0-stub\",\"main\":\"index.js\"}" > $C/node_modules/$p/package.json
  echo "module.exports = {};" > $C/node_modules/$p/index.js
done
test -f $C/node.xz -a $C/node.xz -nt /usr/bin/node || xz -T2 -6 -c /usr/bin/node > $C/node.xz
du -sh $C/run.mjs $C/node.xz

# what the device run carries: one archive (.gpu-carry/ship/bundle.tar.xz), unpacked there by bench/gpu/device.sh
S=$C/stage
rm -rf $S && mkdir -p $S/app/node_modules/webgpu/dist/linux-x64 $C/ship
xz -dc $C/node.xz > $S/node && chmod +x $S/node
cp $C/run.mjs $C/ort-wasm-simd-threaded.asyncify.wasm $C/ort-wasm-simd-threaded.mjs $C/ort-wasm-simd-threaded.wasm $S/app/
cp $C/node_modules/webgpu/index.js $C/node_modules/webgpu/package.json $S/app/node_modules/webgpu/
cp $C/node_modules/webgpu/dist/linux-x64/dawn.node $S/app/node_modules/webgpu/dist/linux-x64/
cp -r $C/node_modules/onnxruntime-node $C/node_modules/sharp $S/app/node_modules/
cp -r node_modules/gpt-3-encoder $S/
tar -C $S -cf - . | xz -T2 -6 > $C/ship/bundle.tar.xz
rm -rf $S
du -sh $C/ship/bundle.tar.xz
