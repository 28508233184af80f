"""
Build the toy pack: a tiny ClipCap, trained on the toy world (toy_world.py), that really captions its images.

    npm run pack:toy          # = /usr/bin/python3 -m model.toy --out packs/toy

It follows ClipCap's recipe at toy scale, with the production architecture and I/O (real 50257-token GPT-2 vocab):
  1. "pre-train GPT-2": a tiny GPT-2 learns the toy captions' language after a prefix, which a throw-away encoder
     makes from the true attributes; a real GPT-2's breadth is what lets a prefix steer it, and this stands in;
  2. "pre-train CLIP": a tiny ViT learns the shape, colour and background from pixels (supervised heads stand in
     for CLIP's contrastive pre-training; only the tower is kept);
  3. ClipCap proper: both frozen, the MLP mapper is trained through GPT-2 on the caption loss.
Then it measures held-out exact match of greedy captions, exports the pack with golden.json, and reports the
size, logits drift and token agreement of the fp16 and int8 variants.
"""

import argparse
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

from . import toy_world as tw
from .model import (ClipCap, ClipCapConfig, GPT2Config, MapperConfig, MLPMapper, VisionConfig, greedy_search,
                    prefix_caption_loss, save_checkpoint, torch_step)
from .ort_node import NodeORT
from .pack import BuiltPack, build_pack, write_report
from .preprocess import preprocess
from .tokenizer import load_gpt2_tokenizer
from .train import MapperTrainConfig, freeze, lr_at, pad_captions, train_mapper

TOY_CONFIG = ClipCapConfig(
    vision=VisionConfig(image_size=64, patch_size=8, width=64, layers=3, heads=4, output_dim=64),
    gpt2=GPT2Config(n_positions=64, n_embd=64, n_layer=2, n_head=4),
    mapper=MapperConfig(type="mlp", prefix_length=4),
    normalize_prefix=False,
)
MEAN = [0.48145466, 0.4578275, 0.40821073]  # CLIP's, so the toy preprocesses exactly like the real packs
STD = [0.26862954, 0.26130258, 0.27577711]


def log(msg: str):
    print(f"[toy {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pixels(images) -> torch.Tensor:
    size = TOY_CONFIG.vision.image_size
    return torch.from_numpy(np.stack([preprocess(im, size, MEAN, STD) for im in images]))


# -----------------------------------------------------------------------------
# Stage 1: the toy GPT-2's "pre-training" corpus


def attribute_code(spec_or_combo) -> torch.Tensor:
    """One-hot shape, colour and background, concatenated: what the stand-in prefix encoder reads."""
    shape, colour, background = spec_or_combo
    parts = [(tw.SHAPES, shape), (list(tw.COLOURS), colour), (list(tw.BACKGROUNDS), background)]
    return torch.cat([F.one_hot(torch.tensor(list(names).index(v)), len(names)).float() for names, v in parts])


def pretrain_gpt2(model: ClipCap, tok, steps: int, seed: int, batch: int = 32, lr: float = 3e-3):
    """A large GPT-2 can be steered by a prefix because it has read so much; a tiny one must learn to be. So the toy
    GPT-2 learns the caption language *after a prefix*, made from the true attributes by a throw-away encoder
    trained alongside it. Only GPT-2 is kept; the real mapper later learns, from pixels, to speak to it."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = model.cfg
    n_code = len(tw.SHAPES) + len(tw.COLOURS) + len(tw.BACKGROUNDS)
    stand_in = MLPMapper(n_code, cfg.gpt2.n_embd, cfg.mapper.prefix_length)
    gpt = model.gpt.train()
    params = list(gpt.parameters()) + list(stand_in.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = MapperTrainConfig(lr=lr, warmup_steps=30)
    for step in range(steps):
        combos = [rng.choice(tw.COMBOS) for _ in range(batch)]
        codes = torch.stack([attribute_code(c) for c in combos])
        tokens, lengths = pad_captions([tok.encode(tw.caption_for(*c)) for c in combos])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, sched)
        loss = prefix_caption_loss(gpt, stand_in(codes), tokens, lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0 or step == steps - 1:
            log(f"gpt2 step {step + 1}/{steps} loss {loss.item():.4f}")
    gpt.eval()
    return float(loss)


# -----------------------------------------------------------------------------
# Stage 2: the toy CLIP tower


def pretrain_vision(model: ClipCap, px: torch.Tensor, specs, epochs: int, seed: int, batch: int = 96,
                    lr: float = 3e-3):
    torch.manual_seed(seed)
    D = TOY_CONFIG.vision.output_dim
    names = {"shape": list(tw.SHAPES), "colour": list(tw.COLOURS), "background": list(tw.BACKGROUNDS)}
    heads = nn.ModuleDict({k: nn.Linear(D, len(v)) for k, v in names.items()})
    labels = {k: torch.tensor([v.index(getattr(s, k)) for s in specs]) for k, v in names.items()}
    params = list(model.visual.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * (len(specs) // batch)
    cfg = MapperTrainConfig(lr=lr, warmup_steps=50)
    g = torch.Generator().manual_seed(seed)
    model.visual.train()
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(specs), generator=g)
        correct = {k: 0 for k in names}
        for b in range(len(specs) // batch):
            idx = order[b * batch : (b + 1) * batch]
            for grp in opt.param_groups:
                grp["lr"] = lr_at(step, steps, cfg)
            emb = model.visual(px[idx])
            loss = 0.0
            for k in names:
                out = heads[k](emb)
                loss = loss + F.cross_entropy(out, labels[k][idx])
                correct[k] += int((out.argmax(-1) == labels[k][idx]).sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        seen = (len(specs) // batch) * batch
        log(f"vision epoch {epoch + 1}/{epochs} loss {float(loss):.4f} train acc "
            + " ".join(f"{k} {correct[k] / seen:.3f}" for k in names))
    model.visual.eval()


# -----------------------------------------------------------------------------
# Evaluation and the pack


def greedy_captions(model: ClipCap, px: torch.Tensor, tok, batch: int = 256):
    with torch.no_grad():
        prefixes = torch.cat([model.prefix(model.encode_image(px[i : i + batch])) for i in range(0, len(px), batch)])
    step = torch_step(model.gpt)
    return [tok.decode(greedy_search(step, prefixes[i : i + 1], max_tokens=20).token_ids) for i in range(len(px))]


def build(out: str, seed: int, n_train: int, n_heldout: int, gpt_steps: int, vision_epochs: int,
          mapper_epochs: int, variants: bool):
    t_start = time.time()
    torch.manual_seed(seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    tok = load_gpt2_tokenizer()
    build_dir = os.path.join(os.path.dirname(os.path.abspath(out)), ".build", os.path.basename(out))
    os.makedirs(build_dir, exist_ok=True)
    os.makedirs(out, exist_ok=True)

    log(f"rendering {n_train} training and {n_heldout} held-out images")
    t = time.time()
    train_specs = tw.sample_specs(n_train, seed, "train")
    heldout_specs = tw.sample_specs(n_heldout, seed, "heldout")
    train_px = pixels([tw.render(s) for s in train_specs])
    heldout_dir = os.path.join(out, "heldout")
    heldout_caps = tw.write_split(heldout_dir, heldout_specs)
    heldout_files = sorted(heldout_caps)
    heldout_px = pixels([tw.render(s) for s in heldout_specs])
    t_render = time.time() - t

    model = ClipCap(TOY_CONFIG)
    t = time.time()
    lm_loss = pretrain_gpt2(model, tok, gpt_steps, seed)
    t_gpt = time.time() - t
    t = time.time()
    pretrain_vision(model, train_px, train_specs, vision_epochs, seed)
    t_vision = time.time() - t

    t = time.time()
    freeze(model.visual)
    freeze(model.gpt)
    with torch.no_grad():
        embeds = torch.cat([model.encode_image(train_px[i : i + 512]) for i in range(0, len(train_px), 512)])
    token_lists = [tok.encode(tw.caption(s)) for s in train_specs]
    losses = train_mapper(model, embeds, token_lists, MapperTrainConfig(epochs=mapper_epochs, batch_size=32, seed=seed), log)
    t_mapper = time.time() - t

    t = time.time()
    predictions = greedy_captions(model, heldout_px, tok)
    truth = [heldout_caps[f] for f in heldout_files]
    exact = sum(p == c for p, c in zip(predictions, truth)) / len(truth)
    misses = [(f, p, c) for f, p, c in zip(heldout_files, predictions, truth) if p != c]
    log(f"held-out exact match {exact:.4f} ({len(truth) - len(misses)}/{len(truth)}), eval {time.time() - t:.0f}s")
    for f, p, c in misses[:10]:
        log(f"  miss {f}: {p!r} (true {c!r})")
    save_checkpoint(model, os.path.join(build_dir, "model.pt"))

    provenance = {"builder": "model/toy.py", "seed": seed, "sources": ["synthetic toy world (model/toy_world.py)"],
                  "license": "same as this repository"}
    golden_images = [(os.path.join(heldout_dir, f), heldout_caps[f]) for f in heldout_files[:4]]
    report = {
        "exact_match": exact, "heldout": len(truth), "misses": [{"file": f, "predicted": p, "true": c}
                                                                  for f, p, c in misses],
        "seed": seed, "train_images": n_train, "distinct_captions": len(tw.ALL_CAPTIONS),
        "final_losses": {"gpt2_lm": lm_loss, "mapper_first": losses[0], "mapper_last": losses[-1]},
        "seconds": {"render": round(t_render, 1), "gpt2": round(t_gpt, 1), "vision": round(t_vision, 1), "mapper": round(t_mapper, 1)},
    }
    with NodeORT() as ort:
        pack = build_pack(model, out, "toy", "Toy shapes (test model)", "fp32", provenance, images=golden_images,
                          max_tokens=20, ort=ort, log=log, mean=MEAN, std=STD,
                          description="A tiny ClipCap trained on synthetic shapes; it captions only the toy world.")
        report["seconds"]["export"] = round(pack.export_seconds + pack.golden_seconds, 1)
        report["parity"] = pack.parity
        log(f"parity fp32: {report['parity']}")
        if variants:
            report["precisions"] = precision_report(model, pack, build_dir, provenance, ort)
    report["seconds"]["total"] = round(time.time() - t_start, 1)
    write_report(out, report)
    log(f"done in {report['seconds']['total']:.0f}s: exact match {exact:.4f}, pack at {out}")
    return report


def precision_report(model: ClipCap, fp32: BuiltPack, build_dir: str, provenance: dict, ort: NodeORT) -> dict:
    """Export the fp16 and int8 siblings and compare them with the fp32 reference on the golden set."""
    m = fp32.manifest
    rows = {"fp32": {"bytes": fp32.bytes}}
    for precision in ("fp16", "int8"):
        p = build_pack(model, os.path.join(build_dir, precision), f"{m['id']}-{precision}",
                       f"{m['name']} ({precision})", precision, provenance, golden_from=fp32.dir,
                       max_tokens=m["generation"]["maxTokens"], ort=ort, mean=m["preprocess"]["mean"],
                       std=m["preprocess"]["std"])
        rows[precision] = {"bytes": p.bytes, "export_seconds": round(p.export_seconds + p.golden_seconds, 1),
                           **p.parity}
        log(f"{precision}: {rows[precision]}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="packs/toy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-heldout", type=int, default=240)
    ap.add_argument("--gpt-steps", type=int, default=200)
    ap.add_argument("--vision-epochs", type=int, default=12)
    ap.add_argument("--mapper-epochs", type=int, default=2)
    ap.add_argument("--no-variants", action="store_true", help="skip the fp16/int8 precision report")
    a = ap.parse_args()
    build(a.out, a.seed, a.n_train, a.n_heldout, a.gpt_steps, a.vision_epochs, a.mapper_epochs, not a.no_variants)


if __name__ == "__main__":
    main()
