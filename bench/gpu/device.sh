#!/usr/bin/env bash
# Runs on the lent GPU machine (device tool), from the repo root, with carry [".gl", ".gpu-carry/ship"]:
# Vulkan loader, node + bundle, the two full-size packs built there, then the WebGPU and WASM processes.
set -o pipefail
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
G=/tmp/g; mkdir -p $G && tar -C $G -xJf .gpu-carry/ship/bundle.tar.xz
mkdir -p node_modules && cp -r $G/gpt-3-encoder node_modules/
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
ls /usr/local/nvidia/share/vulkan/icd.d/ 2>&1; cat $VK_DRIVER_FILES 2>&1 | head -5; ldconfig -p | grep -iE "libvulkan|GLX_nvidia|GLdispatch" | head
t=$(date +%s)
PYTHONUNBUFFERED=1 python3 bench/gpu/build_packs.py /tmp/packs ${NO_PEER:+--no-peer} 2>&1 | grep -v Warning | tail -5
echo "[device] packs built in $(( $(date +%s) - t ))s"; du -sh /tmp/packs/*
export GPU_PACK=/tmp/packs/random-full GPU_RUNS=${GPU_RUNS:-10} GPU_WASM_RUNS=${GPU_WASM_RUNS:-4}
[ -z "$NO_PEER" ] && export GPU_PEER=/tmp/packs/peer-distilvit
GPU_MODE=webgpu GPU_OUT=$OUT/webgpu.json timeout ${WEBGPU_TIMEOUT:-240} $G/node $G/app/run.mjs 2>&1 | grep -v "onnxruntime:\|^\s*at \|wasm-function" | tee $OUT/webgpu.log | tail -40
GPU_MODE=wasm GPU_WEBGPU_JSON=$OUT/webgpu.json GPU_OUT=$OUT/gpu-h100.json timeout ${WASM_TIMEOUT:-200} $G/node $G/app/run.mjs 2>&1 | grep -v "onnxruntime:\|^\s*at " | tee $OUT/wasm.log | tail -20
