"""
Golden outputs beside a pack, and the parity check of its ONNX graphs against them.

golden.json (docs/pack-format.md) holds, per reference image, PyTorch's preprocessing, embedding and prefix,
and its greedy and beam captions; with a text tower, also CLIP scores of a few texts and the re-ranked beam.
Engines prove themselves against it; `check_parity` proves the exported graphs first, by running them through
onnxruntime-node and the very same search and scoring code over the ONNX graphs.
"""

import base64
import json
import os
import shutil
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .clip_tokenizer import load_clip_tokenizer
from .model import ClipCap, Generated, beam_search, clip_score, greedy_search, pad_text_ids, rerank, torch_step
from .ort_node import NodeORT, onnx_step
from .preprocess import load_image, preprocess
from .tokenizer import load_gpt2_tokenizer

OTHER_TEXT = "a photo of a cat."  # the contrast text of an image when no other image's caption differs from its own


def tensor_json(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "dtype": "float32", "b64": base64.b64encode(a.astype("<f4").tobytes()).decode()}


def tensor_from_json(t: dict) -> np.ndarray:
    assert t["dtype"] == "float32", f"golden tensors are float32, got {t['dtype']}"
    return np.frombuffer(base64.b64decode(t["b64"]), dtype="<f4").reshape(t["shape"]).copy()


def caption_image(model: ClipCap, pixel_values: np.ndarray, beams: int, max_tokens: int, with_beam: bool = True):
    """Reference captions for one preprocessed image: (embeds, prefix, greedy, beam or None)."""
    with torch.no_grad():
        x = torch.from_numpy(pixel_values)[None]
        emb = model.encode_image(x)
        prefix = model.prefix(emb)
    step = torch_step(model.gpt)
    return emb, prefix, greedy_search(step, prefix, max_tokens=max_tokens), \
        beam_search(step, prefix, beams=beams, max_tokens=max_tokens) if with_beam else None


# -----------------------------------------------------------------------------
# CLIP scores of texts, written once for the PyTorch reference and the ONNX check

EncodeText = Callable[[np.ndarray], np.ndarray]  # int64 (k, n) ids, 0-padded -> float32 (k, D) text_embeds


def torch_encode_text(model: ClipCap) -> EncodeText:
    def encode(ids):
        with torch.no_grad():
            return model.encode_text(torch.from_numpy(ids)).numpy()

    return encode


def score_texts(encode: EncodeText, image_embeds: np.ndarray, texts: Sequence[str], w: float, alone: bool):
    """(ids per text, text_embeds (k, D), clipScores) of texts against one image (D,). Texts are stripped first; an
    empty one is not scored: ids [], a zero embedding row and clipScore 0 (pack-format.md). alone: each text at its
    own length (the reference); else one padded batch (what an engine may run, and what the ONNX check runs)."""
    tok = load_clip_tokenizer()
    ids = [tok.encode(t.strip()) if t.strip() else [] for t in texts]
    rows = [i for i, r in enumerate(ids) if r]
    D = image_embeds.shape[-1]
    embeds = np.zeros((len(texts), D), np.float32)
    if rows:
        if alone:
            embeds[rows] = np.concatenate([encode(np.array([ids[i]], np.int64)) for i in rows])
        else:
            embeds[rows] = encode(pad_text_ids([ids[i] for i in rows]).numpy())
    scores = clip_score(torch.from_numpy(image_embeds.reshape(-1)), torch.from_numpy(embeds), w).tolist()
    return ids, embeds, [s if ids[i] else 0.0 for i, s in enumerate(scores)]


def rerank_beams(encode: EncodeText, image_embeds: np.ndarray, beam: Generated, text: dict, alone: bool):
    """Every final beam with its clipScore, and the re-ranked one, as golden.json's beam.beams / beam.reranked."""
    gpt2 = load_gpt2_tokenizer()
    texts = [gpt2.decode(b.token_ids) for b in beam.beams]
    _, _, scores = score_texts(encode, image_embeds, texts, text["clipScoreWeight"], alone)
    best = rerank(beam.beams, scores, text["rerankWeight"])
    beams = [{"tokenIds": b.token_ids, "text": t, "score": b.score, "length": b.length, "clipScore": c}
             for b, t, c in zip(beam.beams, texts, scores)]
    return beams, {"tokenIds": beams[best]["tokenIds"], "text": texts[best], "clipScore": scores[best]}


def write_golden(model: ClipCap, pack_dir: str, images: Sequence[Tuple[str, Optional[str]]], beams: int = 5,
                 max_tokens: int = 67, beam_images: Optional[int] = None) -> dict:
    """images: (path, true caption or None). Copies them into pack_dir/golden/ and writes golden.json.
    beam_images: only the first N images get a beam reference (beam search is the slow part on full-size models);
    the rest have "beam": null and serve greedy token agreement only."""
    with open(os.path.join(pack_dir, "pack.json")) as f:
        manifest = json.load(f)
    pre = manifest["preprocess"]
    text = manifest.get("text")
    assert (text is None) == (model.text is None), "pack.json has a text section exactly when the model has a text tower"
    tok = load_gpt2_tokenizer()
    os.makedirs(os.path.join(pack_dir, "golden"), exist_ok=True)
    entries = []
    model = model.eval()
    for i, (src, true_caption) in enumerate(images):
        ext = os.path.splitext(src)[1].lower()
        rel = f"golden/{i}{ext}"
        shutil.copyfile(src, os.path.join(pack_dir, rel))
        px = preprocess(load_image(src), pre["imageSize"], pre["mean"], pre["std"])
        with_beam = beam_images is None or i < beam_images
        emb, prefix, g, b = caption_image(model, px, beams, max_tokens, with_beam)
        entries.append({
            "file": rel,
            "caption": true_caption,
            "pixelValues": tensor_json(px[None]),
            "imageEmbeds": tensor_json(emb.numpy()),
            "prefixEmbeds": tensor_json(prefix.numpy()),
            "greedy": {"tokenIds": g.token_ids, "text": tok.decode(g.token_ids), "logprobs": g.logprobs},
            "beam": {"tokenIds": b.token_ids, "text": tok.decode(b.token_ids), "score": b.score} if b else None,
        })
        if text is not None and b is not None:
            entries[-1]["beam"]["beams"], entries[-1]["beam"]["reranked"] = rerank_beams(
                torch_encode_text(model), emb.numpy(), b, text, alone=True)
    if text is not None:
        for i, e in enumerate(entries):
            e["clip"] = clip_entry(model, entries, i, text["clipScoreWeight"])
    golden = {"packId": manifest["id"], "precision": manifest["precision"],
              "decoding": {"beams": beams, "maxTokens": max_tokens}, "images": entries}
    with open(os.path.join(pack_dir, "golden.json"), "w") as f:
        json.dump(golden, f)
    return golden


def clip_entry(model: ClipCap, entries: List[dict], i: int, w: float) -> dict:
    """golden.json's `clip` of image i: its greedy caption (trimmed), its true caption when known, and one other
    (the next image's true or greedy caption, else OTHER_TEXT), scored against its image embedding."""
    e = entries[i]
    texts = [e["greedy"]["text"].strip()] + ([e["caption"]] if e["caption"] else [])
    others = [x["caption"] or x["greedy"]["text"].strip() for x in entries[i + 1 :] + entries[:i]] + [OTHER_TEXT]
    texts.append(next(t for t in others if t and t not in texts))
    emb = tensor_from_json(e["imageEmbeds"])[0]
    ids, embeds, scores = score_texts(torch_encode_text(model), emb, texts, w, alone=True)
    return {"texts": texts, "inputIds": ids, "textEmbeds": tensor_json(embeds), "clipScores": scores}


def check_parity(pack_dir: str, model: ClipCap, golden_dir: Optional[str] = None,
                 ort: Optional[NodeORT] = None, limit: Optional[int] = None) -> dict:
    """Run the pack's graphs through onnxruntime-node on the golden inputs and compare with the PyTorch model
    (the fp32 reference) and its golden.json. golden_dir defaults to pack_dir; a quantised pack is compared
    against its fp32 sibling's golden.json. Returns max abs diffs and whether the greedy and beam token ids are
    identical, per image and in total. limit: check only the first N golden images (full-size packs: the JSON
    runner is slow). Images without a beam reference count for greedy only. With a text tower: the ONNX text
    embeddings (one padded batch) and clipScores (against the ONNX image embedding) against the reference, and
    whether the ONNX beams, scored and re-ranked the same way, pick the reference's re-ranked beam."""
    golden_dir = golden_dir or pack_dir
    with open(os.path.join(pack_dir, "pack.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(golden_dir, "golden.json")) as f:
        golden = json.load(f)
    d = manifest["decoder"]
    beams, max_tokens = golden["decoding"]["beams"], golden["decoding"]["maxTokens"]
    own = ort is None
    ort = ort or NodeORT().__enter__()
    try:
        files = {r: os.path.join(pack_dir, e["path"]) for r, e in manifest["files"].items()}
        vision, mapper, decoder = ort.load(files["vision"]), ort.load(files["mapper"]), ort.load(files["decoder"])
        step = onnx_step(ort, decoder, d["nLayer"], d["nHead"], d["headDim"])
        report = {"images": [], "max_embeds_diff": 0.0, "max_prefix_diff": 0.0, "max_logits_diff": 0.0,
                  "greedy_identical": 0, "beam_identical": 0}
        text = manifest.get("text")
        text_sid = ort.load(files["text"]) if text else None
        if text:
            encode = lambda ids: ort.run(text_sid, {"input_ids": ids})["text_embeds"]  # noqa: E731
            report.update({"max_text_embeds_diff": 0.0, "max_clip_score_diff": 0.0, "reranked_identical": 0})
        entries = golden["images"][:limit]
        for entry in entries:
            px = tensor_from_json(entry["pixelValues"])
            emb = ort.run(vision, {"pixel_values": px})["image_embeds"]
            ref_emb = tensor_from_json(entry["imageEmbeds"])
            mapper_in = ref_emb / np.linalg.norm(ref_emb, axis=-1, keepdims=True) \
                if manifest["embedding"]["l2Normalize"] else ref_emb
            prefix = ort.run(mapper, {"image_embeds": mapper_in})["prefix_embeds"]
            ref_prefix = tensor_from_json(entry["prefixEmbeds"])
            # decode from the reference prefix, so each stage is judged on its own
            prefix_t = torch.from_numpy(ref_prefix)
            logits_diff = _teacher_forced_logits_diff(step, torch_step(model.gpt), prefix_t,
                                                      entry["greedy"]["tokenIds"])
            g = greedy_search(step, prefix_t, max_tokens=max_tokens)
            b = beam_search(step, prefix_t, beams=beams, max_tokens=max_tokens) if entry["beam"] else None
            row = {
                "file": entry["file"],
                "embeds_diff": float(np.abs(emb - ref_emb).max()),
                "prefix_diff": float(np.abs(prefix - ref_prefix).max()),
                "logits_diff": logits_diff,
                "greedy_identical": g.token_ids == entry["greedy"]["tokenIds"],
                "beam_identical": b is not None and b.token_ids == entry["beam"]["tokenIds"],
                "greedy": g.token_ids, "beam": b.token_ids if b else None,
            }
            if text and "clip" in entry:  # the ONNX text tower on one padded batch, scored against ONNX image_embeds
                ref = tensor_from_json(entry["clip"]["textEmbeds"])
                _, embeds, scores = score_texts(encode, emb[0], entry["clip"]["texts"], text["clipScoreWeight"],
                                                alone=False)
                row["text_embeds_diff"] = float(np.abs(embeds - ref).max())
                row["clip_score_diff"] = float(np.abs(np.array(scores) - np.array(entry["clip"]["clipScores"])).max())
                row["clip_scores"] = scores
                for k in ("text_embeds", "clip_score"):
                    report[f"max_{k}_diff"] = max(report[f"max_{k}_diff"], row[f"{k}_diff"])
            if text and b is not None and entry["beam"].get("reranked"):
                _, reranked = rerank_beams(encode, emb[0], b, text, alone=False)
                row["reranked"] = reranked["tokenIds"]
                row["reranked_identical"] = reranked["tokenIds"] == entry["beam"]["reranked"]["tokenIds"]
                report["reranked_identical"] += int(row["reranked_identical"])
            report["images"].append(row)
            for k in ("embeds", "prefix", "logits"):
                report[f"max_{k}_diff"] = max(report[f"max_{k}_diff"], row[f"{k}_diff"])
            report["greedy_identical"] += int(row["greedy_identical"])
            report["beam_identical"] += int(row["beam_identical"])
        report["count"] = len(entries)
        report["beam_count"] = sum(1 for e in entries if e["beam"])
        if text:
            report["rerank_count"] = sum(1 for e in entries if e["beam"] and e["beam"].get("reranked"))
        for sid in (vision, mapper, decoder) + ((text_sid,) if text_sid is not None else ()):
            ort.free(sid)
        return report
    finally:
        if own:
            ort.__exit__(None, None, None)


def _teacher_forced_logits_diff(step, ref_step, prefix: torch.Tensor, token_ids: List[int]) -> float:
    """Max |logits| difference between two step functions fed the same prefix and the same tokens (prefill, then
    one cached step per token): the graph's numerical drift, independent of which tokens the search picks."""
    P, E = prefix.shape[1], prefix.shape[2]
    start = (torch.zeros(1, 0, dtype=torch.long), prefix, torch.ones(1, P, dtype=torch.long), None)
    (a, pa), (b, pb) = step(*start), ref_step(*start)
    worst = float((a - b).abs().max())
    for i, t in enumerate(token_ids[:-1]):
        args = (torch.tensor([[t]]), prefix.new_zeros(1, 0, E), torch.ones(1, P + i + 1, dtype=torch.long))
        (a, pa), (b, pb) = step(*args, pa), ref_step(*args, pb)
        worst = max(worst, float((a - b).abs().max()))
    return worst
