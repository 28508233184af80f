"""
Build the toy pack: a tiny ClipCap, trained on the toy world (toy_world.py), that really captions its images.

    npm run pack:toy          # = /usr/bin/python3 -m model.toy --out packs/toy

It follows ClipCap's recipe at toy scale, with the production architecture and I/O (real 50257-token GPT-2 vocab):
  1. "pre-train GPT-2": a tiny GPT-2 learns the toy captions' language after a prefix, which a throw-away encoder
     makes from the true attributes; a real GPT-2's breadth is what lets a prefix steer it, and this stands in;
  2. "pre-train CLIP": a tiny ViT learns the shape, colour and background from pixels (supervised heads stand in
     for CLIP's contrastive pre-training; only the tower is kept);
  3. ClipCap proper: both frozen, the MLP mapper is trained through GPT-2 on the caption loss;
  4. CLIP's text tower: trained contrastively against the frozen vision tower (toy_clip.py), then the gate threshold
     is calibrated on in-distribution images and the re-ranking weight chosen with an under-trained mapper.
Then it measures held-out exact match of greedy captions, exports the pack with golden.json (and out-of-distribution
images in ood/), and reports the size, logits drift and token agreement of the fp16 and int8 variants.

    /usr/bin/python3 -m model.toy --stage text   # stage 4 and the pack only, from packs/.build/toy/model.pt
"""

import argparse
import copy
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

from . import toy_clip as tc
from . import toy_world as tw
from .clip_tokenizer import load_clip_tokenizer
from .model import (ClipCap, ClipCapConfig, GPT2Config, MapperConfig, MLPMapper, VisionConfig, beam_search,
                    greedy_search, load_checkpoint, prefix_caption_loss, save_checkpoint, torch_step)
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


def undertrained(model: ClipCap, embeds: torch.Tensor, token_lists, steps: int, seed: int) -> ClipCap:
    """A copy of `model` whose mapper is trained afresh for only `steps` steps: a captioner that is often unsure,
    to measure what re-ranking by CLIP adds (the full toy is right too often for that to show)."""
    early = copy.deepcopy(model)
    torch.manual_seed(seed + 1)
    early.clip_project = MLPMapper(TOY_CONFIG.vision.output_dim, TOY_CONFIG.gpt2.n_embd, TOY_CONFIG.mapper.prefix_length)
    n = 32 * steps
    train_mapper(early, embeds[:n], token_lists[:n],
                 MapperTrainConfig(epochs=1, batch_size=32, seed=seed, warmup_steps=10, log_every=10**9), log)
    return early.eval()


def beams(model: ClipCap, px: torch.Tensor, n_beams: int = 5):
    with torch.no_grad():
        prefixes = model.prefix(model.encode_image(px))
    step = torch_step(model.gpt)
    return [beam_search(step, prefixes[i : i + 1], beams=n_beams, max_tokens=20) for i in range(len(px))]


def learn_clip(model: ClipCap, embeds: torch.Tensor, captions, token_lists, out: str, build_dir: str, seed: int,
               heldout: tuple, tok, args) -> tuple:
    """Stage 4: train the text tower, then calibrate the gate and choose the re-ranking weight.
    heldout = (pixels, greedy captions, true captions). Returns (model with text tower, text_manifest, report)."""
    ctok = load_clip_tokenizer()
    model = tc.with_text_tower(model, seed=seed)
    figures = {"text_tower": tc.train_text_tower(model, embeds, captions, ctok,
                                                 tc.TextTrainConfig(steps=args.text_steps, seed=seed), log)}
    t = time.time()

    def scored(px, texts):
        with torch.no_grad():
            return tc.clip_scores(model, ctok, model.encode_image(px), texts)

    # The gate: a low quantile of in-distribution scores on a split of its own; judged on held-out and OOD images.
    cal_px = pixels([tw.render(s) for s in tw.sample_specs(args.n_calibrate, seed, "calibrate")])
    threshold = tc.gate_threshold(scored(cal_px, greedy_captions(model, cal_px, tok)), args.gate_quantile)
    held_px, held_pred, held_truth = heldout
    held_scores = scored(held_px, held_pred)
    ood_specs = tw.sample_ood_specs(args.n_ood, seed)
    ood_kinds = tw.write_ood_split(os.path.join(out, "ood"), args.n_ood, seed)
    ood_px = pixels([tw.render_ood(s) for s in ood_specs])
    ood_scores = scored(ood_px, greedy_captions(model, ood_px, tok))
    wrong = [i for i, (p, c) in enumerate(zip(held_pred, held_truth)) if p != c]
    gate = {
        "gateThreshold": threshold, "quantile": args.gate_quantile, "calibrationImages": args.n_calibrate,
        "labelledShare": 1 - tc.share_below(held_scores, threshold), "heldout": len(held_truth),
        "oodGatedShare": tc.share_below(ood_scores, threshold), "ood": args.n_ood,
        "oodGatedByKind": {k: tc.share_below(ood_scores[np.array([s.kind == k for s in ood_specs])], threshold)
                           for k in tw.OOD_KINDS},
        "wrongGated": int(sum(held_scores[i] < threshold for i in wrong)), "wrong": len(wrong),
        "heldoutScores": [float(np.min(held_scores)), float(np.median(held_scores))],
        "oodScores": [float(np.median(ood_scores)), float(np.max(ood_scores))],
    }
    log(f"gate {threshold:.4f}: {gate['labelledShare']:.4f} of held-out labelled, {gate['oodGatedShare']:.4f} of "
        f"OOD gated {gate['oodGatedByKind']}, {gate['wrongGated']}/{len(wrong)} wrong captions gated")

    # Re-ranking: an under-trained mapper's beams on a split of their own; the weight with the best exact match.
    early = undertrained(model, embeds, token_lists, args.early_steps, seed)
    save_checkpoint(early, os.path.join(build_dir, "model-early.pt"))
    rr_specs = tw.sample_specs(args.n_rerank, seed, "rerank")
    rr_px = pixels([tw.render(s) for s in rr_specs])
    with torch.no_grad():
        rr_embeds = model.encode_image(rr_px)
    results = beams(early, rr_px)
    rr_scores = tc.beam_clip_scores(model, ctok, tok, rr_embeds, results)
    weight, table = tc.choose_rerank_weight(results, rr_scores, [tw.caption(s) for s in rr_specs], tok)
    rr = {"split": "rerank", "images": args.n_rerank, "mapperSteps": args.early_steps, "weight": weight,
          "exactMatch": {str(w): em for w, em in table.items()}}
    log(f"re-ranking with the {args.early_steps}-step mapper: exact match by weight {table}; chose {weight}")
    figures["gate"], figures["rerank"] = gate, rr
    figures["seconds"] = round(time.time() - t, 1)
    note = (f"gateThreshold: the {args.gate_quantile} quantile of the clipScores of greedy captions on "
            f"{args.n_calibrate} in-distribution images (split 'calibrate'); labelledShare on the {len(held_truth)} "
            f"held-out images, oodGatedShare on the {args.n_ood} images of ood/. rerankWeight: the best exact match "
            f"of re-ranked beams of a mapper trained {args.early_steps} steps, on {args.n_rerank} images "
            "(split 'rerank'), ties to the smaller weight.")
    manifest = {"rerankWeight": weight, "gateThreshold": threshold, "calibration": {
        "method": "heldout-quantile", "quantile": args.gate_quantile, "heldout": len(held_truth),
        "labelledShare": gate["labelledShare"], "oodGatedShare": gate["oodGatedShare"], "ood": args.n_ood,
        "oodGatedByKind": gate["oodGatedByKind"], "rerankExactMatch": rr["exactMatch"], "note": note}}
    return model, manifest, figures, ood_kinds


def build(out: str, seed: int, args):
    t_start = time.time()
    torch.manual_seed(seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    tok = load_gpt2_tokenizer()
    build_dir = os.path.join(os.path.dirname(os.path.abspath(out)), ".build", os.path.basename(out))
    os.makedirs(build_dir, exist_ok=True)
    os.makedirs(out, exist_ok=True)

    log(f"rendering {args.n_train} training and {args.n_heldout} held-out images")
    t = time.time()
    train_specs = tw.sample_specs(args.n_train, seed, "train")
    heldout_specs = tw.sample_specs(args.n_heldout, seed, "heldout")
    train_px = pixels([tw.render(s) for s in train_specs])
    heldout_dir = os.path.join(out, "heldout")
    heldout_caps = tw.write_split(heldout_dir, heldout_specs)
    heldout_files = sorted(heldout_caps)
    heldout_px = pixels([tw.render(s) for s in heldout_specs])
    seconds = {"render": round(time.time() - t, 1)}
    token_lists = [tok.encode(tw.caption(s)) for s in train_specs]

    if args.stage == "all":
        model = ClipCap(TOY_CONFIG)
        t = time.time()
        lm_loss = pretrain_gpt2(model, tok, args.gpt_steps, seed)
        seconds["gpt2"] = round(time.time() - t, 1)
        t = time.time()
        pretrain_vision(model, train_px, train_specs, args.vision_epochs, seed)
        seconds["vision"] = round(time.time() - t, 1)
    else:
        model = load_checkpoint(args.from_checkpoint)
        log(f"stage {args.stage}: GPT-2, vision tower and mapper from {args.from_checkpoint}")
    freeze(model.visual)
    freeze(model.gpt)
    with torch.no_grad():
        embeds = torch.cat([model.encode_image(train_px[i : i + 512]) for i in range(0, len(train_px), 512)])
    if args.stage == "all":
        t = time.time()
        losses = train_mapper(model, embeds, token_lists,
                              MapperTrainConfig(epochs=args.mapper_epochs, batch_size=32, seed=seed), log)
        seconds["mapper"] = round(time.time() - t, 1)

    t = time.time()
    predictions = greedy_captions(model, heldout_px, tok)
    truth = [heldout_caps[f] for f in heldout_files]
    exact = sum(p == c for p, c in zip(predictions, truth)) / len(truth)
    misses = [(f, p, c) for f, p, c in zip(heldout_files, predictions, truth) if p != c]
    log(f"held-out exact match {exact:.4f} ({len(truth) - len(misses)}/{len(truth)}), eval {time.time() - t:.0f}s")
    for f, p, c in misses[:10]:
        log(f"  miss {f}: {p!r} (true {c!r})")

    t = time.time()
    model, text_manifest, clip, ood_kinds = learn_clip(model, embeds, [tw.caption(s) for s in train_specs],
                                                       token_lists, out, build_dir, seed,
                                                       (heldout_px, predictions, truth), tok, args)
    seconds["clip"] = round(time.time() - t, 1)
    save_checkpoint(model, os.path.join(build_dir, "model.pt"))

    provenance = {"builder": "model/toy.py", "seed": seed, "sources": ["synthetic toy world (model/toy_world.py)"],
                  "license": "same as this repository"}
    # Four held-out images, then one OOD image of each of two kinds, so golden.json has a gated caption too.
    first_ood = {k: next(f for f in sorted(ood_kinds) if ood_kinds[f]["kind"] == k) for k in ("noise", "text")}
    golden_images = [(os.path.join(heldout_dir, f), heldout_caps[f]) for f in heldout_files[:4]] + \
                    [(os.path.join(out, "ood", f), None) for f in first_ood.values()]
    report = {
        "exact_match": exact, "heldout": len(truth), "misses": [{"file": f, "predicted": p, "true": c}
                                                                  for f, p, c in misses],
        "seed": seed, "train_images": args.n_train, "distinct_captions": len(tw.ALL_CAPTIONS), "stage": args.stage,
        "clip": clip, "seconds": seconds,
    }
    if args.stage == "all":
        report["final_losses"] = {"gpt2_lm": lm_loss, "mapper_first": losses[0], "mapper_last": losses[-1]}
    with NodeORT() as ort:
        pack = build_pack(model, out, "toy", "Toy shapes (test model)", "fp32", provenance, images=golden_images,
                          max_tokens=20, ort=ort, log=log, mean=MEAN, std=STD, text_manifest=text_manifest,
                          description="A tiny ClipCap trained on synthetic shapes; it captions only the toy world.")
        seconds["export"] = round(pack.export_seconds + pack.golden_seconds, 1)
        report["parity"] = pack.parity
        report["files"] = pack.files
        log(f"parity fp32: {report['parity']}; bytes {pack.files}")
        if not args.no_variants:
            report["precisions"] = precision_report(model, pack, build_dir, provenance, ort, text_manifest)
    seconds["total"] = round(time.time() - t_start, 1)
    write_report(out, report)
    log(f"done in {seconds['total']:.0f}s: exact match {exact:.4f}, pack at {out}")
    return report


def precision_report(model: ClipCap, fp32: BuiltPack, build_dir: str, provenance: dict, ort: NodeORT,
                     text_manifest: dict) -> dict:
    """Export the fp16 and int8 siblings and compare them with the fp32 reference on the golden set."""
    m = fp32.manifest
    rows = {"fp32": {"bytes": fp32.bytes}}
    for precision in ("fp16", "int8"):
        p = build_pack(model, os.path.join(build_dir, precision), f"{m['id']}-{precision}",
                       f"{m['name']} ({precision})", precision, provenance, golden_from=fp32.dir,
                       max_tokens=m["generation"]["maxTokens"], ort=ort, mean=m["preprocess"]["mean"],
                       std=m["preprocess"]["std"], text_manifest=text_manifest)
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
    ap.add_argument("--stage", choices=("all", "text"), default="all",
                    help="text: load --from-checkpoint and train only CLIP's text tower, then calibrate and export")
    ap.add_argument("--from-checkpoint", default="packs/.build/toy/model.pt", help="the captioner for --stage text")
    ap.add_argument("--text-steps", type=int, default=200, help="text tower training steps (every caption once each)")
    ap.add_argument("--n-calibrate", type=int, default=240, help="in-distribution images that set the gate")
    ap.add_argument("--gate-quantile", type=float, default=0.03, help="share of them the gate may leave unlabelled")
    ap.add_argument("--n-ood", type=int, default=240, help="out-of-distribution images, written to OUT/ood/")
    ap.add_argument("--n-rerank", type=int, default=100, help="images that choose the re-ranking weight")
    ap.add_argument("--early-steps", type=int, default=30, help="training steps of the under-trained mapper")
    a = ap.parse_args()
    build(a.out, a.seed, a)


if __name__ == "__main__":
    main()
