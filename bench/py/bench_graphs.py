"""
Probe graphs for `npm run bench:peers`: one large MatMul with a constant weight, in fp32 and in the int8 form our
packs use (DynamicQuantizeLinear + MatMulInteger, via export.to_int8_dynamic), so the benchmark can measure the peak
GFLOP/s that this onnxruntime-web build reaches at each precision, and judge each stage against it; and the same
product for a single row (a decode step's shape), whose speed is set by memory bandwidth rather than arithmetic; the
one-row product also as weight-only MatMulNBits at 4 and 8 bits (bench/lowbit-probe.bench.ts times those).

    /usr/bin/python3 -m bench.py.bench_graphs --out .tmp/bench [--m 512 --k 768 --n 3072]
"""

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model.export import OPSET, to_int8_dynamic
from model.lowbit import to_nbits

# Weight-only MatMulNBits forms of the one-row probe (model/lowbit.py): bits, block, accuracy_level.
NBITS = {"q4b32": (4, 32, 4), "q4b128": (4, 128, 4), "q8b32": (8, 32, 4), "q8b128": (8, 128, 4),
         "q4b32acc0": (4, 32, 0)}


def matmul_graph(path: str, m: int, k: int, n: int, seed: int = 0):
    """Y[m, n] = X[m, k] @ W[k, n] with W a constant initialiser (so ORT pre-packs it, as it does for model weights)."""
    w = np.random.default_rng(seed).normal(0, k ** -0.5, (k, n)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"], name="probe")], "matmul_probe",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(w, "W")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".tmp/bench")
    ap.add_argument("--m", type=int, default=512)  # rows: a large batch of tokens, so the kernel is compute-bound
    ap.add_argument("--k", type=int, default=768)  # GPT-2 small's width
    ap.add_argument("--n", type=int, default=3072)  # its MLP width
    ap.add_argument("--gemv-n", type=int, default=32768)  # 96 MB of fp32 weight: far beyond any cache
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    meta = {}
    # "matmul": compute-bound, the peak. "gemv": one row against a weight far larger than the caches, the shape of a
    # decode step, bound by memory bandwidth: the ceiling a decode step can reach.
    for probe, (m, n) in {"matmul": (a.m, a.n), "gemv": (1, a.gemv_n)}.items():
        files = {}
        for precision in ("fp32", "int8"):
            p = os.path.join(a.out, f"{probe}_{precision}.onnx")
            matmul_graph(p, m, a.k, n)
            if precision == "int8":
                to_int8_dynamic(p)
            files[precision] = os.path.basename(p)
        if probe == "gemv":  # a decode step's shape: the one the low-bit forms are for (bench/lowbit-probe.bench.ts)
            for name, (bits, block, acc) in NBITS.items():
                p = os.path.join(a.out, f"{probe}_{name}.onnx")
                to_nbits(os.path.join(a.out, files["fp32"]), bits, block, out=p, accuracy=acc)
                files[name] = os.path.basename(p)
        meta[probe] = {"m": m, "k": a.k, "n": n, "flops": 2 * m * a.k * n, "files": files}
    with open(os.path.join(a.out, "probes.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
