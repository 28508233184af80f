"""
Caption a COCO-format validation split and score it with BLEU-4 and CIDEr-D (model/metrics.py).

    /usr/bin/python3 -m model.features --captions dataset_coco.json --karpathy-split test --images coco/ \\
        --clip ViT-B-32.pt --out data/coco-test-vitb32
    /usr/bin/python3 -m model.evaluate --features data/coco-test-vitb32 --checkpoint runs/coco/epoch-009.pt
    /usr/bin/python3 -m model.evaluate --features data/coco-test-vitb32 --clip ViT-B-32.pt --clipcap coco_weights.pt

Every image is captioned once (beam search, 5 beams, ClipCap's semantics, unless --strategy greedy) from its stored
CLIP embedding, and scored against all of its reference captions. ClipCap's published COCO Karpathy-test scores,
for comparison: transformer mapper B4 33.53 / CIDEr 113.08; MLP mapper + fine-tuned GPT-2 B4 32.15 / CIDEr 108.35.
Their evaluation ran the coco-caption toolkit (Stanford PTB tokeniser); ours tokenises PTB-style in Python, see
metrics.py, so expect agreement to within a few tenths, not to the digit.
"""

import argparse
import json
import os
import time
from dataclasses import asdict
from typing import Optional

import numpy as np
import torch

from .metrics import corpus_bleu, cider_d
from .model import ClipCap, beam_search, greedy_search, load_checkpoint, torch_step
from .official import build_official
from .tokenizer import load_gpt2_tokenizer


def evaluate_features(model: ClipCap, features: str, strategy: str = "beam", beams: int = 5, max_tokens: int = 67,
                      limit: Optional[int] = None, log=print) -> dict:
    with open(os.path.join(features, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("vision") is not None and meta["vision"] != json.loads(json.dumps(asdict(model.cfg.vision))):
        raise ValueError(f"{features} was extracted with another CLIP tower ({meta['vision']}) than this model's "
                         f"({asdict(model.cfg.vision)})")
    emb = np.load(os.path.join(features, "embeddings.npy"), mmap_mode="r")
    with open(os.path.join(features, "images.json")) as f:
        images = json.load(f)
    with open(os.path.join(features, "captions.json")) as f:
        caps = json.load(f)
    refs = {}
    for c in caps:
        refs.setdefault(c["image"], []).append(c["caption"])
    rows = sorted(refs)[:limit] if limit else sorted(refs)
    tok = load_gpt2_tokenizer()
    step = torch_step(model.gpt.eval())
    model.eval()
    hyps, t0 = {}, time.time()
    for n, r in enumerate(rows):
        with torch.no_grad():
            prefix = model.prefix(torch.from_numpy(np.asarray(emb[r:r + 1], dtype=np.float32)))  # (1, P, E)
        out = beam_search(step, prefix, beams=beams, max_tokens=max_tokens) if strategy == "beam" \
            else greedy_search(step, prefix, max_tokens=max_tokens)
        hyps[r] = tok.decode(out.token_ids).strip()
        if (n + 1) % 100 == 0:
            log(f"{n + 1}/{len(rows)} images ({(n + 1) / (time.time() - t0):.1f}/s)")
    h = {str(r): hyps[r] for r in rows}
    g = {str(r): refs[r] for r in rows}
    bleu, cider = corpus_bleu(h, g), cider_d(h, g)
    return {"images": len(rows), "strategy": strategy, "bleu4": 100 * bleu["bleu4"],
            "bleu1": 100 * bleu["bleu1"], "cider_d": 100 * cider["cider_d"],
            "captions": [{"file_name": images[r]["file_name"], "caption": hyps[r]} for r in rows]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True, help="directory written by model/features.py for the split")
    ap.add_argument("--checkpoint", help="a checkpoint of ours (train_scale's epoch-NNN.pt)")
    ap.add_argument("--clip", help="official CLIP file (with --clipcap)")
    ap.add_argument("--clipcap", help="official ClipCap checkpoint (with --clip)")
    ap.add_argument("--strategy", choices=("beam", "greedy"), default="beam")
    ap.add_argument("--beams", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=67)
    ap.add_argument("--limit", type=int, help="score only the first N images")
    ap.add_argument("--out", help="write scores and captions here (JSON)")
    a = ap.parse_args(argv)
    assert bool(a.checkpoint) != bool(a.clip and a.clipcap), "give --checkpoint, or --clip and --clipcap"
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    model = load_checkpoint(a.checkpoint) if a.checkpoint else build_official(a.clip, a.clipcap)
    result = evaluate_features(model, a.features, a.strategy, a.beams, a.max_tokens, a.limit)
    print(f"{result['images']} images, {a.strategy}: BLEU-4 {result['bleu4']:.2f}  CIDEr-D {result['cider_d']:.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
