"""
Build a model pack from the officially published weights, in one command:

    npm run pack:build -- --preset coco --clip ViT-B-32.pt --clipcap coco_weights.pt --out packs/clipcap-coco
    npm run pack:build -- --preset coco-transformer --clip RN50x4.pt --clipcap transformer_weights.pt \\
        --out packs/clipcap-coco-transformer --precision int8
    npm run pack:build -- --preset coco --from-hub [--out DIR]     (downloads what src/shared/catalogue.json lists)
    /usr/bin/python3 -m model.build_pack ...            (the same, without npm)

Where to download each file: docs/official-weights.md; or --from-hub fetches them as the extension does (model/hub.py:
the catalogue's mirrors in order, resumed downloads, sizes and SHA-256 checked, cached under downloads/), and the
pack takes the catalogue's id, name, description and precision. Steps 2-4 are model/pack.py's pipeline, the one
every pack builder calls:
  1. official.build_official: CLIP tower + ClipCap mapper + GPT-2, every key and shape checked, L2 normalisation set
     from the mapper type as ClipCap's notebooks use it (override with --normalize true|false);
  2. export.export_pack at the chosen precision (fp16 by default, or fp32 or int8), pack.json recording
     embedding.l2Normalize. fp16 is the default because `npm run bench:peers` found it the fastest precision that
     keeps token agreement with fp32 at 99% or more (as fast as fp32, half the download); int8 is smaller, and
     faster in the vision tower only, and changes more tokens;
  3. golden.write_golden: PyTorch's fp32 reference outputs on a few reference images (plus any --images);
  4. unless --no-check: golden.check_parity runs the pack through onnxruntime-node against them and writes
     report.json (size, max diffs, whether greedy and beam token ids are identical).

--text adds CLIP's text tower from the same CLIP file (text.onnx, text-tokenizer.json), so the engine can score
its captions (CLIPScore), flag the uncertain ones and re-rank beams. Its gate and re-ranking weight are
export.ASSUMED_TEXT_MANIFEST's, calibration method "assumed": CLIPScore's published definition for ViT-B/32
(Hessel et al. 2021), not a measurement on the pack (see that constant's note).
"""

import argparse
import hashlib
import os
import time
from typing import List, Optional

import torch

from . import hub
from .export import ASSUMED_TEXT_MANIFEST, PRECISIONS
from .official import build_official
from .pack import build_pack, write_report
from .random_pack import golden_images

CLIPCAP_README = "https://github.com/rmokady/CLIP_prefix_caption#inference-notebooks"
PRESETS = {
    "coco": {
        "id": "clipcap-coco", "name": "ClipCap COCO (MLP mapper, fine-tuned GPT-2)",
        "description": "ClipCap's COCO captioner: CLIP ViT-B/32, MLP mapper (prefix 10), GPT-2 fine-tuned on COCO.",
        "sources": ["https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
                    "https://drive.google.com/file/d/1IdaBtMSvtyzF0ByVaBHtvM0JYSXRExRX (coco_weights.pt)", CLIPCAP_README],
    },
    "conceptual": {
        "id": "clipcap-conceptual", "name": "ClipCap Conceptual Captions (MLP mapper, fine-tuned GPT-2)",
        "description": "ClipCap trained on Conceptual Captions: CLIP ViT-B/32, MLP mapper (prefix 10), fine-tuned GPT-2.",
        "sources": ["https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
                    "https://drive.google.com/file/d/14pXWwB4Zm82rsDdvbGguLfx9F8aM7ovT (conceptual_weights.pt)", CLIPCAP_README],
    },
    "coco-transformer": {
        "id": "clipcap-coco-transformer", "name": "ClipCap COCO (transformer mapper, frozen GPT-2)",
        "description": "ClipCap's light COCO model: CLIP RN50x4, transformer mapper (prefix 40), GPT-2 unchanged.",
        "sources": ["https://openaipublic.azureedge.net/clip/models/7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt",
                    "https://drive.google.com/file/d/1GYPToCqFREwi285wPLhuVExlz7DDUDfJ (transformer COCO weights)", CLIPCAP_README],
    },
}
# --from-hub: the catalogue model each preset builds
HUB_MODELS = {"coco": "clipcap-coco", "conceptual": "clipcap-conceptual", "coco-transformer": "clipcap-coco-transformer"}
LICENSE = ("ClipCap code and weights: MIT (rmokady/CLIP_prefix_caption); CLIP: MIT (openai/CLIP); GPT-2: modified "
           "MIT (openai/gpt-2). Training data (COCO, Conceptual Captions) carries its own terms.")


def log(msg: str):
    print(f"[pack:build {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def file_digest(path: str) -> dict:
    if os.path.isdir(path):
        return {"file": os.path.basename(os.path.normpath(path)), "directory": True}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": h.hexdigest()}


def build(clip: str, clipcap: str, out: str, precision: str = "fp16", gpt2: Optional[str] = None,
          preset: Optional[str] = None, pack_id: Optional[str] = None, name: Optional[str] = None,
          normalize: Optional[bool] = None, images: Optional[List[str]] = None, beams: int = 5, max_tokens: int = 67,
          check: bool = True, description: Optional[str] = None, provenance: Optional[dict] = None,
          text: bool = False) -> dict:
    """Build, check and report one pack. `description` and `provenance` (merged over the default one) let a caller
    that knows more than the preset (the catalogue, for --from-hub) record it. text: include CLIP's text tower."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.time()
    p = PRESETS.get(preset, {}) if preset else {}
    if preset and not p:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    model = build_official(clip, clipcap, gpt2, normalize_prefix=normalize, text=text)
    cfg = model.cfg
    log(f"loaded {sum(x.numel() for x in model.parameters()) / 1e6:.1f}M parameters: {cfg.vision.arch} "
        f"{cfg.vision.image_size}px -> {cfg.vision.output_dim}, {cfg.mapper.type} mapper prefix "
        f"{cfg.mapper.prefix_length}, GPT-2 {cfg.gpt2.n_layer} layers, l2Normalize={cfg.normalize_prefix}"
        + (f", text tower {cfg.text.layers} layers of {cfg.text.width}" if cfg.text else ""))
    pack_id = pack_id or p.get("id") or os.path.basename(os.path.normpath(out))
    provenance = {"builder": "model/build_pack.py", "preset": preset,
                  "inputs": [file_digest(x) for x in (clip, clipcap, gpt2) if x],
                  "sources": p.get("sources", []), "license": LICENSE, **(provenance or {})}
    build_dir = os.path.join(os.path.dirname(os.path.abspath(out)), ".build", os.path.basename(os.path.normpath(out)))
    refs = [(x, None) for x in golden_images(os.path.join(build_dir, "images"), 0)] + [(x, None) for x in images or []]
    built = build_pack(model, out, pack_id, name or p.get("name") or pack_id, precision, provenance, images=refs,
                       beams=beams, max_tokens=max_tokens, check=check, log=log,
                       description=p.get("description", "") if description is None else description,
                       text_manifest=ASSUMED_TEXT_MANIFEST if text else None)
    report = {"id": pack_id, "precision": precision, "bytes": built.bytes, "files": built.files,
              "l2Normalize": built.manifest["embedding"]["l2Normalize"]}
    if check:
        parity = built.parity
        report.update(parity)
        log(f"parity: max logits diff {parity['max_logits_diff']:.2e}, greedy identical "
            f"{parity['greedy_identical']}/{parity['count']}, beam identical {parity['beam_identical']}/{parity['count']}")
        if text:
            log(f"text tower: max text_embeds diff {parity['max_text_embeds_diff']:.2e}, clipScore diff "
                f"{parity['max_clip_score_diff']:.2e}, re-ranked identical "
                f"{parity['reranked_identical']}/{parity['rerank_count']}")
    report["seconds"] = round(time.time() - t0, 1)
    write_report(out, report)
    log(f"done in {report['seconds']:.0f}s: {report['bytes'] / 1e6:.1f} MB")
    return report


def build_from_hub(preset: str, out: Optional[str] = None, clipcap: Optional[str] = None,
                   precision: Optional[str] = None, downloads: str = hub.DOWNLOADS, **kw) -> dict:
    """Fetch the preset's catalogue model (model/hub.py) and build it with the catalogue's id, name, description
    and precision; provenance lists each input's role, URL, size and SHA-256."""
    if preset not in HUB_MODELS:
        raise ValueError(f"--from-hub needs --preset, one of {', '.join(HUB_MODELS)}")
    m = hub.find_model(hub.load_catalogue(), HUB_MODELS[preset])
    user = {"clipcap": clipcap} if clipcap else {}
    for role, spec in m.get("inputs", {}).items():
        if (spec.get("fetch") == "user-file" or not spec.get("sources")) and role not in user:
            hint = f" ({spec['hint']})" if spec.get("hint") else ""
            raise hub.HubError(f"{m['id']}: its {role!r} weights are not downloadable{hint}; download them "
                               f"yourself and pass --{role} PATH")
    inputs = hub.fetch_model(m, downloads, user)
    if "clip" not in inputs or "clipcap" not in inputs:
        raise hub.HubError(f"{m['id']}: the catalogue must list inputs 'clip' and 'clipcap', it lists "
                           f"{', '.join(inputs) or 'none'}")
    provenance = {"builder": "model/build_pack.py --from-hub", "catalogue": m["id"], "template": m.get("template"),
                  "inputs": [{"role": r, "url": i["url"], "format": i["format"], "bytes": i["bytes"],
                              "sha256": i["sha256"], "check": i["check"]} for r, i in inputs.items()],
                  "license": m.get("license", LICENSE)}
    return build(inputs["clip"]["path"], inputs["clipcap"]["path"], out or os.path.join("packs", m["id"]),
                 precision or m.get("precision", "fp16"), preset=preset, pack_id=m["id"], name=m.get("name"),
                 description=m.get("description", ""), provenance=provenance, **kw)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", help="OpenAI CLIP archive (ViT-B-32.pt / RN50x4.pt) or HF CLIP file/dir")
    ap.add_argument("--clipcap", help="ClipCap checkpoint (coco_weights.pt, conceptual_weights.pt, ...)")
    ap.add_argument("--gpt2", help="HF GPT-2 file/dir; only needed for a ClipCap checkpoint without gpt.* weights")
    ap.add_argument("--from-hub", action="store_true",
                    help="download the preset's files as src/shared/catalogue.json lists them (model/hub.py)")
    ap.add_argument("--downloads", default=hub.DOWNLOADS, help="--from-hub's cache (default downloads/)")
    ap.add_argument("--out", help="required unless --from-hub (default packs/<catalogue id>)")
    ap.add_argument("--precision", choices=PRECISIONS,
                    help="default fp16 (see bench/results/peers.json), or the catalogue's with --from-hub")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="fills id, name, description and source URLs")
    ap.add_argument("--id")
    ap.add_argument("--name")
    ap.add_argument("--normalize", choices=("auto", "true", "false"), default="auto",
                    help="L2-normalise the CLIP embedding before the mapper; auto: as the checkpoint was published")
    ap.add_argument("--images", nargs="*", default=[], help="extra reference images for golden.json")
    ap.add_argument("--beams", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=67)
    ap.add_argument("--no-check", action="store_true", help="skip the onnxruntime-node parity check")
    ap.add_argument("--text", action="store_true",
                    help="include CLIP's text tower (gating and re-ranking; thresholds assumed, see the docstring)")
    a = ap.parse_args(argv)
    normalize = None if a.normalize == "auto" else a.normalize == "true"
    if a.from_hub:
        if a.clip or a.gpt2 or a.id or a.name:
            ap.error("--from-hub takes id, name and the CLIP file from the catalogue; drop --clip/--gpt2/--id/--name")
        if not a.preset:
            ap.error(f"--from-hub needs --preset ({', '.join(HUB_MODELS)})")
        return build_from_hub(a.preset, a.out, a.clipcap, a.precision, a.downloads, normalize=normalize,
                              images=a.images, beams=a.beams, max_tokens=a.max_tokens, check=not a.no_check,
                              text=a.text)
    if not (a.clip and a.clipcap and a.out):
        ap.error("--clip, --clipcap and --out are required (or use --from-hub)")
    return build(a.clip, a.clipcap, a.out, a.precision or "fp16", a.gpt2, a.preset, a.id, a.name, normalize,
                 a.images, a.beams, a.max_tokens, not a.no_check, text=a.text)


if __name__ == "__main__":
    main()
