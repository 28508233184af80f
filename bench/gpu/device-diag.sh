#!/usr/bin/env bash
# Diagnosis of the WebGPU process's crash on the device: Dawn alone, then our engine on the toy pack with ORT's
# verbose log; then the WASM reference with the peer (full packs built there).
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
G=/tmp/g; mkdir -p $G && tar -C $G -xJf .gpu-carry/ship/bundle.tar.xz
mkdir -p node_modules && cp -r $G/gpt-3-encoder node_modules/ && cp bench/gpu/probe.mjs $G/app/
timeout 60 $G/node $G/app/probe.mjs 2>&1 | tail -5; echo "[diag] probe rc=$?"
GPU_MODE=webgpu GPU_PACK=packs/toy GPU_RUNS=3 GPU_ORT_LOG=verbose GPU_OUT=$OUT/toy-webgpu.json timeout 120 $G/node $G/app/run.mjs > $OUT/toy-webgpu.log 2>&1; echo "[diag] toy webgpu rc=$?"
grep -v "^\s*at " $OUT/toy-webgpu.log | grep -v "Shader code\|^  \|^}\|^$\|^fn \|^@\|^const\|^var\|^struct\|^alias\|^enable" | tail -25 | cut -c1-300
PYTHONUNBUFFERED=1 python3 bench/gpu/build_packs.py /tmp/packs 2>&1 | grep "\[build\]"
GPU_MODE=wasm GPU_PACK=/tmp/packs/random-full GPU_PEER=/tmp/packs/peer-distilvit GPU_WASM_RUNS=4 GPU_OUT=$OUT/wasm-h200.json timeout 200 $G/node $G/app/run.mjs 2>&1 | grep "\[gpu\]" | cut -c1-600
