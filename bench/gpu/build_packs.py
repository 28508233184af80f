"""
Build the two full-size fp32 packs the GPU benchmark needs, on the device machine (they are ~1 GB each, too big to
carry): ours (model/random_pack.py's `full` ClipCap: ViT-B/32 + MLP mapper + GPT-2 small, seeded random weights)
without the golden/parity run (that needs onnxruntime-node), and the distilvit-style peer (bench/py/peer_distilvit.py).

    python3 bench/gpu/build_packs.py OUT_DIR      -> OUT_DIR/random-full, OUT_DIR/peer-distilvit
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import torch  # noqa: E402

# (model/export.py asks for the TorchScript exporter itself where torch 2.9+ would default to dynamo.)
from model.export import export_pack  # noqa: E402
from model.random_pack import SIZES, random_model  # noqa: E402


def main():
    out = sys.argv[1]
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    t = time.time()
    model = random_model(SIZES["full"], 0)
    export_pack(model, os.path.join(out, "random-full"), "random-full", "Random full (fp32, benchmark only)", "fp32",
                {"builder": "bench/gpu/build_packs.py", "seed": 0, "sources": ["seeded random weights"],
                 "license": "same as this repository"},
                description="Seeded random weights with the real shapes; its captions mean nothing.", beams=5, max_tokens=20)
    print(f"[build] ours exported in {time.time() - t:.0f}s", flush=True)
    if "--no-peer" not in sys.argv:
        t = time.time()
        from bench.py import peer_distilvit
        peer_distilvit.build(os.path.join(out, "peer-distilvit"), "full", ["fp32"], "cached", 0)
        print(f"[build] peer exported in {time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    main()
