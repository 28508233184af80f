"""
Random-weight packs: real architectures and I/O with seeded random weights, for parity tests and benchmarks.

    npm run pack:random       # full size: ViT-B/32 + MLP mapper (prefix 10) + GPT-2 small, fp32, fp16 and int8
    /usr/bin/python3 -m model.random_pack --size small --out packs/small-random

`small` is a tiny model on the other code paths (transformer mapper, L2-normalised embedding), for parity tests.
Speed does not depend on weight values, so the full-size pack is what the benchmarks time. Both carry CLIP's text
tower (ViT-B/32's size in the full pack, a tiny one in the small), so gating and re-ranking are timed and checked
too; their gate and re-ranking figures are export.ASSUMED_TEXT_MANIFEST's, meaningless on random weights.

Weights are drawn wider than a fresh initialisation (the token table especially), so logits are peaked and the
greedy and beam choices are decided by clear margins, not by float rounding.
"""

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image

from . import toy_world as tw
from .export import ASSUMED_TEXT_MANIFEST, export_transformersjs
from .model import ClipCap, ClipCapConfig, GPT2Config, MapperConfig, TextConfig, VisionConfig, save_checkpoint
from .ort_node import NodeORT
from .pack import build_pack, write_report

SIZES = {
    # ViT-B/32, MLP mapper with prefix 10, GPT-2 small: the COCO model's shapes, and ViT-B/32's text tower
    "full": ClipCapConfig(text=TextConfig()),
    "small": ClipCapConfig(
        vision=VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=2, output_dim=48),
        gpt2=GPT2Config(n_positions=128, n_embd=32, n_layer=2, n_head=2),
        mapper=MapperConfig(type="transformer", prefix_length=5, clip_length=3, num_layers=2, num_heads=4),
        normalize_prefix=True,
        text=TextConfig(width=32, layers=2, heads=2, output_dim=48),  # CLIP's vocabulary and context, tiny tower
    ),
}


def log(msg: str):
    print(f"[random {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def random_model(cfg: ClipCapConfig, seed: int) -> ClipCap:
    torch.manual_seed(seed)
    model = ClipCap(cfg).eval()
    with torch.no_grad():
        # Token and position tables wide enough that logits are peaked (clear margins) and change from step to step
        # (a fresh initialisation repeats one token forever, which would make a weak parity test).
        E = cfg.gpt2.n_embd
        model.gpt.transformer.wte.weight.normal_(0.0, (32 / E) ** 0.5)
        model.gpt.transformer.wpe.weight.normal_(0.0, (32 / E) ** 0.5)
        for p in model.gpt.transformer.h.parameters():
            if p.dim() == 2:  # Conv1D weights are [in, out]
                p.normal_(0.0, 1.7 / p.shape[0] ** 0.5)
        for p in model.clip_project.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.5 / p.shape[-1] ** 0.5)
        if model.text is not None:  # tokens far apart, so different captions score clearly differently
            model.text.token_embedding.weight.normal_(0.0, 1.0)
    return model


def golden_images(out_dir: str, seed: int, agreement: int = 0):
    """Reference images of several sizes, aspect ratios and formats (PNG, JPEG, RGBA PNG), then `agreement` more
    (toy-world renders, every other one resized and noisy like a photo) for measuring token agreement."""
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    specs = tw.sample_specs(2, seed, "golden")
    a = tw.render(specs[0]).resize((301, 197), Image.BICUBIC)
    a.save(os.path.join(out_dir, "wide.png"))
    paths.append(os.path.join(out_dir, "wide.png"))
    yy, xx = np.mgrid[0:240, 0:180]
    grad = np.stack([xx * 255 / 179, yy * 255 / 239, (xx + yy) * 255 / 418], -1)
    noisy = np.clip(grad + rng.normal(0, 25, grad.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(os.path.join(out_dir, "tall.jpg"), quality=92)
    paths.append(os.path.join(out_dir, "tall.jpg"))
    rgba = tw.render(specs[1]).convert("RGBA")
    rgba.putalpha(200)
    rgba.save(os.path.join(out_dir, "alpha.png"))
    paths.append(os.path.join(out_dir, "alpha.png"))
    noise = np.random.default_rng(seed + 1)
    for i, spec in enumerate(tw.sample_specs(agreement, seed + 1, "agree") if agreement else []):
        im = tw.render(spec)
        if i % 2:
            a = np.asarray(im.resize((200 + 20 * i, 160), Image.BICUBIC)).astype(np.float32)
            im = Image.fromarray(np.clip(a + noise.normal(0, 30, a.shape), 0, 255).astype(np.uint8))
        paths.append(os.path.join(out_dir, f"agree{i}.png"))
        im.save(paths[-1])
    return paths


# Full size: 16 reference images (3 with a beam reference) for token agreement, and the parity check through the
# JSON runner on the fp32 pack's first 2 only; it takes minutes per image at this size.
AGREEMENT = {"full": 13, "small": 0}
PARITY_LIMIT = {"full": 2, "small": None}


def build(size: str, out: str, seed: int, precisions, max_tokens: int, beams: int = 5):
    cfg = SIZES[size]
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.time()
    model = random_model(cfg, seed)
    params = sum(p.numel() for p in model.parameters())
    log(f"{size}: {params / 1e6:.1f}M parameters")
    build_dir = os.path.join(os.path.dirname(os.path.abspath(out)), ".build", os.path.basename(out))
    os.makedirs(build_dir, exist_ok=True)
    save_checkpoint(model, os.path.join(build_dir, "model.pt"))
    images = golden_images(os.path.join(build_dir, "images"), seed, AGREEMENT[size])
    provenance = {"builder": "model/random_pack.py", "seed": seed, "sources": ["seeded random weights"],
                  "license": "same as this repository"}
    report = {"size": size, "parameters": params, "precisions": {}}
    reference = None
    with NodeORT() as ort:
        for precision in precisions:
            d = out if len(precisions) == 1 else os.path.join(out, precision)
            # PyTorch golden outputs beside the first (fp32) pack; the others share and compare to it. Quantised
            # full-size packs are judged by the engine itself: npm run bench:peers (token agreement)
            check = not (size == "full" and reference is not None)
            p = build_pack(model, d, f"random-{size}-{precision}" if len(precisions) > 1 else f"random-{size}",
                           f"Random {size} ({precision}, benchmark only)", precision, provenance,
                           images=[] if reference else [(x, None) for x in images], golden_from=reference,
                           beams=beams, max_tokens=max_tokens, beam_images=3, check=check,
                           parity_limit=PARITY_LIMIT[size], ort=ort, text_manifest=ASSUMED_TEXT_MANIFEST,
                           description="Seeded random weights with the real shapes; its captions mean nothing.")
            reference = reference or d
            row = {"bytes": p.bytes, "files": p.files, "export_seconds": p.export_seconds,
                   "golden_seconds": p.golden_seconds, **(p.parity or {"parity": "see npm run bench:peers"})}
            report["precisions"][precision] = row
            log(f"{precision}: {row}")
    if size == "full":  # the benchmark's peer: the same GPT-2 in the layout transformers.js loads
        t = time.time()
        export_transformersjs(model, os.path.join(out, "transformersjs"), int8="int8" in precisions)
        report["transformersjs_export_seconds"] = round(time.time() - t, 1)
    report["seconds"] = round(time.time() - t0, 1)
    write_report(out, report)
    log(f"done in {report['seconds']:.0f}s")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precisions", default=None, help="comma-separated; default fp32,fp16,int8 (full) or fp32 (small)")
    ap.add_argument("--max-tokens", type=int, default=None, help="golden caption length; default 20 full, 20 small")
    a = ap.parse_args()
    out = a.out or ("packs/random-full" if a.size == "full" else "packs/small-random")
    precisions = (a.precisions or ("fp32,fp16,int8" if a.size == "full" else "fp32")).split(",")
    build(a.size, out, a.seed, precisions, a.max_tokens or 20)


if __name__ == "__main__":
    main()
