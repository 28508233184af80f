"""
The one pack pipeline every pack builder calls (toy.py, random_pack.py, build_pack.py):

    export -> golden -> verify -> parity -> report

  1. export.export_pack writes the three graphs at the chosen precision, tokenizer.json and pack.json (and
     text.onnx and text-tokenizer.json for a model with CLIP's text tower, whose `text_manifest` the builder gives);
  2. golden: golden.write_golden runs the PyTorch model (the fp32 reference) on the reference images and writes
     golden.json beside the pack, or, for a sibling of another precision, that pack's golden.json and images are
     shared (so every pack directory carries the reference it is judged against);
  3. export.verify_pack re-hashes every file pack.json lists;
  4. golden.check_parity runs the pack through onnxruntime-node against the reference and the PyTorch model;
  5. write_report writes the builder's report.json (each builder adds what it alone knows: training figures,
     sizes per precision, provenance of the inputs).

A builder only makes the model and says what to call the pack; the steps, and their order, live here.
"""

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from .export import export_pack, verify_pack
from .golden import check_parity, write_golden
from .model import ClipCap
from .ort_node import NodeORT


@dataclass
class BuiltPack:
    dir: str
    manifest: dict  # pack.json as written
    export_seconds: float  # graphs, tokenizer.json and pack.json
    golden_seconds: float  # golden.json written (or shared) and every file re-hashed
    parity: Optional[dict]  # check_parity's totals, per-image rows left out; None when the check was skipped

    @property
    def files(self) -> dict:
        return {role: e["bytes"] for role, e in self.manifest["files"].items()}

    @property
    def bytes(self) -> int:
        return sum(self.files.values())


def share_golden(reference_dir: str, pack_dir: str, precision: str) -> dict:
    """Copy reference_dir's golden.json (relabelled with this pack's precision) and its images into pack_dir: a
    quantised sibling is judged against the fp32 model's outputs, not its own."""
    with open(os.path.join(reference_dir, "golden.json")) as f:
        golden = json.load(f)
    golden["precision"] = precision
    with open(os.path.join(pack_dir, "golden.json"), "w") as f:
        json.dump(golden, f)
    os.makedirs(os.path.join(pack_dir, "golden"), exist_ok=True)
    for e in golden["images"]:
        with open(os.path.join(reference_dir, e["file"]), "rb") as src, open(os.path.join(pack_dir, e["file"]), "wb") as dst:
            dst.write(src.read())
    return golden


def build_pack(model: ClipCap, out_dir: str, pack_id: str, name: str, precision: str = "fp32",
               provenance: Optional[dict] = None, *, images: Sequence[Tuple[str, Optional[str]]] = (),
               golden_from: Optional[str] = None, beams: int = 5, max_tokens: int = 67,
               beam_images: Optional[int] = None, check: bool = True, parity_limit: Optional[int] = None,
               ort: Optional[NodeORT] = None, log: Callable[[str], None] = lambda msg: None,
               text_manifest: Optional[dict] = None, **manifest_kw) -> BuiltPack:
    """Export, reference, verify and check one pack.

    images: (path, true caption or None) for a fresh golden.json from `model`; golden_from: instead, the directory
    of a pack of the same model (its fp32 sibling) whose golden.json is shared and checked against. beam_images:
    only the first N images get a beam reference. check=False skips the onnxruntime-node parity run;
    parity_limit checks only the first N golden images. text_manifest: pack.json's text.rerankWeight, gateThreshold
    and calibration, required exactly when the model has a text tower (export.text_section). manifest_kw go to
    pack.json (description, mean, std, ...)."""
    assert (golden_from is None) != (not images), "give reference images or a golden_from pack, not both or neither"
    t = time.time()
    manifest = export_pack(model, out_dir, pack_id, name, precision, provenance, beams=beams, max_tokens=max_tokens,
                           text_manifest=text_manifest, **manifest_kw)
    export_seconds = time.time() - t
    log(f"exported {precision} pack {pack_id} to {out_dir} in {export_seconds:.0f}s")
    t = time.time()
    if golden_from is None:
        write_golden(model, out_dir, list(images), beams=beams, max_tokens=max_tokens, beam_images=beam_images)
    else:
        share_golden(golden_from, out_dir, precision)
    verify_pack(out_dir)
    golden_seconds = time.time() - t
    parity = None
    if check:
        full = check_parity(out_dir, model, golden_dir=golden_from, ort=ort, limit=parity_limit)
        parity = {k: v for k, v in full.items() if k != "images"}
    return BuiltPack(out_dir, manifest, round(export_seconds, 1), round(golden_seconds, 1), parity)


def write_report(out_dir: str, report: dict) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    return path
