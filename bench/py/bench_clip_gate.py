"""
What CLIP's text tower buys on the toy pack (issue 17, "Measure"): gating and re-ranking, as the pack calibrated them.

  * Gating: the share of in-distribution held-out images still labelled (goal >= 95%) against the share of
    out-of-distribution images gated (goal >= 90%), per kind of OOD image; and how many wrong captions the gate holds.
  * Re-ranking: exact match of beam search with and without re-ranking (the pack's rerankWeight) on a harder split:
    the held-out images captioned by the under-trained mapper that model/toy.py saved beside the pack (the weight
    was chosen on another split, 'rerank'), next to the share of images where some beam is right (the ceiling).

It reads the pack's own images (heldout/, ood/) and thresholds (pack.json "text"), and runs the PyTorch model the
pack was exported from (packs/.build/toy/model.pt; the build's parity check ties the ONNX graphs to it).

    npm run bench:clip      # = /usr/bin/python3 -m bench.py.bench_clip_gate
"""

import argparse
import datetime
import json
import os
import time

import numpy as np
import torch

from model import toy_clip as tc
from model.clip_tokenizer import load_clip_tokenizer
from model.model import load_checkpoint
from model.preprocess import load_image, preprocess
from model.toy import beams, greedy_captions
from model.tokenizer import load_gpt2_tokenizer

QUIET_PER_CORE = 0.5  # as bench/lib/machine.mjs: above this load per core, figures are not quoted


def load_now() -> dict:
    return {"load1": round(os.getloadavg()[0], 2), "cores": os.cpu_count() or 1}


def load_verdict(before: dict, after: dict) -> dict:
    """bench/lib/machine.mjs's loadVerdict, for a Python benchmark."""
    per_core = before["load1"] / before["cores"]
    quiet = per_core <= QUIET_PER_CORE
    line = (f"load average {before['load1']} at the start ({per_core:.2f} per core on {before['cores']} cores), "
            f"{after['load1']} at the end (its own work included)")
    return {"before": before["load1"], "after": after["load1"], "cores": before["cores"], "quiet": quiet,
            "line": f"{line}: quiet" if quiet else
            f"WARNING: {line}, above {QUIET_PER_CORE} per core: these figures were taken under load; do not quote them"}


def pack_pixels(pack_dir: str, sub: str, files, pre: dict) -> torch.Tensor:
    return torch.from_numpy(np.stack([preprocess(load_image(os.path.join(pack_dir, sub, f)), pre["imageSize"],
                                                 pre["mean"], pre["std"]) for f in files]))


def run(pack_dir: str, build_dir: str, limit: int) -> dict:
    with open(os.path.join(pack_dir, "pack.json")) as f:
        manifest = json.load(f)
    text = manifest["text"]
    threshold, weight = text["gateThreshold"], text["rerankWeight"]
    model = load_checkpoint(os.path.join(build_dir, "model.pt"))
    early = load_checkpoint(os.path.join(build_dir, "model-early.pt"))
    tok, ctok = load_gpt2_tokenizer(), load_clip_tokenizer()
    pre = manifest["preprocess"]
    with open(os.path.join(pack_dir, "heldout", "captions.json")) as f:
        captions = json.load(f)
    with open(os.path.join(pack_dir, "ood", "kinds.json")) as f:
        kinds = json.load(f)
    held_files, ood_files = sorted(captions)[:limit], sorted(kinds)[:limit]
    truth = [captions[f] for f in held_files]
    held_px, ood_px = pack_pixels(pack_dir, "heldout", held_files, pre), pack_pixels(pack_dir, "ood", ood_files, pre)
    with torch.no_grad():
        held_emb, ood_emb = model.encode_image(held_px), model.encode_image(ood_px)

    t = time.perf_counter()
    held_pred = greedy_captions(model, held_px, tok)
    greedy_ms = (time.perf_counter() - t) * 1000 / len(held_files)
    t = time.perf_counter()
    held_scores = tc.clip_scores(model, ctok, held_emb, held_pred)
    score_ms = (time.perf_counter() - t) * 1000 / len(held_files)
    ood_pred = greedy_captions(model, ood_px, tok)
    ood_scores = tc.clip_scores(model, ctok, ood_emb, ood_pred)
    wrong = [i for i, (p, c) in enumerate(zip(held_pred, truth)) if p != c]
    by_kind = {}
    for k in sorted({v["kind"] for v in kinds.values()}):
        sel = np.array([kinds[f]["kind"] == k for f in ood_files])
        by_kind[k] = {"images": int(sel.sum()), "gated": tc.share_below(ood_scores[sel], threshold),
                      "medianClipScore": round(float(np.median(ood_scores[sel])), 4)}
    gate = {
        "threshold": threshold, "heldout": len(held_files), "labelled": 1 - tc.share_below(held_scores, threshold),
        "greedyExactMatch": 1 - len(wrong) / len(truth), "wrong": len(wrong),
        "wrongGated": int(sum(held_scores[i] < threshold for i in wrong)),
        "ood": len(ood_files), "oodGated": tc.share_below(ood_scores, threshold), "byKind": by_kind,
        # Other operating points, for choosing a quantile (in-sample: each threshold is a held-out quantile here).
        "tradeoff": [{"quantile": q, "threshold": tc.gate_threshold(held_scores, q),
                      "labelled": 1 - tc.share_below(held_scores, tc.gate_threshold(held_scores, q)),
                      "oodGated": tc.share_below(ood_scores, tc.gate_threshold(held_scores, q))}
                     for q in (0.01, 0.03, 0.05, 0.1, 0.2)],
        "heldoutClipScore": {"min": float(held_scores.min()), "median": float(np.median(held_scores))},
        "oodClipScore": {"median": float(np.median(ood_scores)), "max": float(ood_scores.max())},
    }

    t = time.perf_counter()
    results = beams(early, held_px)
    beam_ms = (time.perf_counter() - t) * 1000 / len(held_files)
    t = time.perf_counter()
    scores = tc.beam_clip_scores(model, ctok, tok, held_emb, results)
    rerank_ms = (time.perf_counter() - t) * 1000 / len(held_files)
    rerank = {
        "split": "heldout, under-trained mapper (model-early.pt)", "images": len(held_files), "weight": weight,
        "exactMatchBeam": tc.reranked_exact_match(results, scores, truth, tok, 0.0),
        "exactMatchReranked": tc.reranked_exact_match(results, scores, truth, tok, weight),
        "someBeamRight": float(np.mean([any(tok.decode(b.token_ids) == c for b in r.beams)
                                        for r, c in zip(results, truth)])),
        "byWeight": {str(w): tc.reranked_exact_match(results, scores, truth, tok, w) for w in tc.RERANK_WEIGHTS},
    }
    cost = {"greedyMsPerCaption": round(greedy_ms, 1), "gateTextPassMsPerCaption": round(score_ms, 2),
            "beamMsPerCaption": round(beam_ms, 1), "rerankTextPassMsPerCaption": round(rerank_ms, 2),
            "runtime": "PyTorch (CPU), batched text passes; the engine's costs are bench/text.bench.ts's"}
    return {"pack": {"dir": pack_dir, "id": manifest["id"], "precision": manifest["precision"],
                     "calibration": text.get("calibration")}, "gate": gate, "rerank": rerank, "cost": cost}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", default="packs/toy")
    ap.add_argument("--build", default="packs/.build/toy", help="where toy.py saved model.pt and model-early.pt")
    ap.add_argument("--limit", type=int, default=10**9, help="at most this many images of each split")
    ap.add_argument("--out", default="bench/results/clip-gate.json")
    a = ap.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    before = load_now()
    t = time.time()
    result = run(a.pack, a.build, a.limit)
    load = load_verdict(before, load_now())
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "load": load,
              "seconds": round(time.time() - t, 1), **result}
    g, r = result["gate"], result["rerank"]
    print(f"gate at {g['threshold']:.4f}: {g['labelled']:.4f} of {g['heldout']} held-out images labelled "
          f"(goal >= 0.95), {g['oodGated']:.4f} of {g['ood']} OOD images gated (goal >= 0.90); "
          f"{g['wrongGated']}/{g['wrong']} wrong greedy captions gated")
    for k, v in g["byKind"].items():
        print(f"  {k:14s} {v['gated']:.3f} gated of {v['images']} (median clipScore {v['medianClipScore']})")
    print("  other operating points (held-out quantile: labelled, OOD gated): " + ", ".join(
        f"{t['quantile']}: {t['labelled']:.3f}, {t['oodGated']:.3f}" for t in g["tradeoff"]))
    print(f"re-ranking (weight {r['weight']}) on {r['images']} held-out images, under-trained mapper: exact match "
          f"{r['exactMatchBeam']:.4f} -> {r['exactMatchReranked']:.4f} (some beam right: {r['someBeamRight']:.4f})")
    print(f"cost (PyTorch): {result['cost']}")
    print(load["line"])
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
