"""
Graph templates (docs/model-install.md, section 3): a pack's ONNX graphs (vision, mapper, decoder, and text when the
config has CLIP's text tower) with the weights cut out, plus a recipe saying which input key (or which fold of
keys) fills each cut. The extension's converter (src/converter/) fills a template with the published weights on the
user's device, without Python; `fill_template` here is the same job in Python, the reference the TypeScript converter
is tested against.

    /usr/bin/python3 -m model.template --config vit-b32-mlp --precision fp16 --out packs/templates/vit-b32-mlp-fp16

How a template is made, so that it cannot drift from model/export.py:
  1. a ClipCap of the right shape gets seeded random weights, every float tensor distinct;
  2. export.py writes its graphs exactly as export_pack does (export_fp32_graphs, then to_fp16_storage);
  3. each initialiser's raw_data is located by walking the protobuf wire format, and matched by its bytes to a
     state-dict tensor: as it is (`identity`), transposed (`transpose`), or a Conv weight/bias the exporter fused
     with the BatchNorm after it (`bn_fold_weight`/`bn_fold_bias`);
  4. every matched initialiser is rebuilt from the state dict by `run_op` (the interpreter fill_template uses) and
     must equal the exported bytes, and skeleton + pieces must reassemble the exported file, before anything is
     written.

Recipes name each tensor by its key in the published file that holds it (the input role): `visual.*` and the text
tower's top-level keys (`token_embedding.weight`, `transformer.resblocks.N.*`, ...) in OpenAI's CLIP archive,
`clip_project.*` and `gpt.*` in ClipCap's checkpoint. Our state dict keeps the text tower under `text.`; input_key
maps one onto the other.

A limit of the approach: torch's exporter stores two parameters with identical values as ONE initialiser. Real
weights never repeat a whole tensor, but a model with, say, two all-zero biases would export to a file the
template does not reproduce byte for byte (it would still compute the same outputs).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from . import clip_tokenizer
from .export import ASSUMED_TEXT_MANIFEST, ExportError, export_fp32_graphs, pack_manifest, to_fp16_storage
from .model import ClipCap, ClipCapConfig, GPT2Config, MapperConfig, TextConfig, VisionConfig
from .tokenizer import build_tokenizer_json

FORMAT_VERSION = 1
TEMPLATE_PRECISIONS = ("fp32", "fp16")  # int8 rewrites weights by per-column scales: not a per-tensor recipe
ROLES = ("vision", "mapper", "decoder")
TEXT_ROLE = "text"  # the optional graph: CLIP's text tower (text.onnx, with text-tokenizer.json)
TEXT_TOKENIZER = "text-tokenizer.json"
# ONNX TensorProto data types a template can write, and their numpy forms (little-endian, as ONNX stores them)
ONNX_FLOAT, ONNX_FLOAT16 = 1, 10
DTYPES = {ONNX_FLOAT: ("float32", np.dtype("<f4")), ONNX_FLOAT16: ("float16", np.dtype("<f2"))}
NUMPY = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}

# Keys an input file may hold that the template does not use. OpenAI CLIP archives carry three integer metadata
# entries and the temperature logit_scale (the graphs compute embeddings, not logits); BatchNorm's batch counter is a
# training-only buffer; Hugging Face GPT-2 files of 2021 carry each layer's causal mask (attn.bias) and fill value
# (attn.masked_bias) as buffers. The text tower's keys are ignored too, unless the template has a text graph.
CLIP_IGNORE_TEXT = [r"^transformer\.", r"^token_embedding\.", r"^positional_embedding$", r"^ln_final\.",
                    r"^text_projection$"]
CLIP_IGNORE = [r"^logit_scale$", r"^input_resolution$", r"^context_length$", r"^vocab_size$", r"\.num_batches_tracked$"]
TEXT_UNUSED = ("text.logit_scale",)  # in our state dict (OpenAI's key), in no graph
CLIPCAP_IGNORE = [r"\.attn\.bias$", r"\.attn\.masked_bias$"]
CLIPCAP_OPTIONAL = {"gpt.lm_head.weight": "gpt.transformer.wte.weight"}  # GPT2LMHeadModel saves its tied head


class TemplateError(ExportError):
    """A template cannot be built or filled; the message names the initialiser, input key or file at fault."""


# -----------------------------------------------------------------------------
# The configurations templates are built for

CONFIGS = {
    # the COCO and Conceptual Captions checkpoints: ViT-B/32 (512-d), MLP mapper with prefix 10, GPT-2 small; and
    # ViT-B/32's text tower (width 512, 12 layers, 8 heads), which the same CLIP file holds
    "vit-b32-mlp": ClipCapConfig(text=TextConfig()),
    # the transformer COCO checkpoint: RN50x4 (288 px, 640-d), 8-layer transformer mapper, prefix 40, clip length 40,
    # L2-normalised embedding (docs/official-weights.md)
    "rn50x4-transformer": ClipCapConfig(
        vision=VisionConfig(image_size=288, width=80, heads=40, output_dim=640, arch="resnet",
                            resnet_layers=(4, 6, 10, 6)),
        mapper=MapperConfig(type="transformer", prefix_length=40, clip_length=40, num_layers=8, num_heads=8),
        normalize_prefix=True,
        # RN50x4's text tower (openai/CLIP build_model: transformer_width 640, heads 640 // 64, 12 layers)
        text=TextConfig(width=640, layers=12, heads=10, output_dim=640),
    ),
}


def named_config(name: str) -> Tuple[ClipCapConfig, dict]:
    """(config, pack_manifest keyword arguments) for a --config name."""
    if name in CONFIGS:
        return CONFIGS[name], text_manifest_of(CONFIGS[name])
    if name == "toy":
        from .toy import MEAN, STD, TOY_CONFIG
        from .toy_clip import TOY_TEXT
        # the toy world's text tower (model/toy_clip.py) even while TOY_CONFIG itself has none
        cfg = TOY_CONFIG if TOY_CONFIG.text is not None else replace(TOY_CONFIG, text=TOY_TEXT)
        return cfg, {"mean": MEAN, "std": STD, "max_tokens": 20, **text_manifest_of(cfg)}  # as model/toy.py exports
    if name == "small":
        from .random_pack import SIZES
        return SIZES["small"], text_manifest_of(SIZES["small"])
    raise TemplateError(f"unknown config {name!r}; choose one of toy, small, {', '.join(CONFIGS)}")


def text_manifest_of(cfg: ClipCapConfig) -> dict:
    """pack_manifest's text_manifest keyword for a config: the assumed calibration (model/export.py) when it has a
    text tower, as pack:build --text and the random packs write it: a template is not a pack it could measure."""
    return {"text_manifest": ASSUMED_TEXT_MANIFEST} if cfg.text is not None else {}


# -----------------------------------------------------------------------------
# Random weights


def random_model(cfg: ClipCapConfig, seed: int = 0) -> ClipCap:
    """A ClipCap whose every float parameter and buffer is seeded random, so that no two tensors (or folds of
    tensors) share bytes: the exporter would merge equal initialisers, and matching by bytes would be ambiguous."""
    torch.manual_seed(seed)
    model = ClipCap(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)  # a variance: positive
            else:
                fan_in = t.shape[1] if t.dim() >= 2 else 1
                t.copy_(torch.randn(t.shape, generator=g) * (0.5 * fan_in ** -0.5 if t.dim() >= 2 else 0.1))
                if name.endswith(".weight") and t.dim() == 1:  # LayerNorm / BatchNorm scale, near 1
                    t.add_(1.0)
    return model


# -----------------------------------------------------------------------------
# The protobuf wire format, just enough to find initialisers in an ONNX file


def _varint(buf, pos: int) -> Tuple[int, int]:
    result, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf, start: int, end: int) -> Iterator[Tuple[int, int, int, int]]:
    """(field number, wire type, value or payload start, payload end) for each field of a message in buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield field, wire, value, pos
        elif wire == 1:
            yield field, wire, pos, pos + 8
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            yield field, wire, pos, pos + n
            pos += n
        elif wire == 5:
            yield field, wire, pos, pos + 4
            pos += 4
        else:
            raise TemplateError(f"unsupported protobuf wire type {wire} at byte {pos}")
    if pos != end:
        raise TemplateError(f"protobuf message overruns its length (ends at {pos}, expected {end})")


def onnx_initializers(buf) -> List[dict]:
    """Every initialiser of the main graph, in file order: name, dims, data_type and the absolute byte range
    [start, end) of its raw_data payload (None when the tensor stores its values in another field).
    ModelProto.graph = 7; GraphProto.initializer = 5; TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9."""
    out = []
    graphs = [(s, e) for f, w, s, e in _fields(buf, 0, len(buf)) if f == 7 and w == 2]
    if len(graphs) != 1:
        raise TemplateError(f"expected one graph in the ONNX model, found {len(graphs)}")
    gs, ge = graphs[0]
    for f, w, s, e in _fields(buf, gs, ge):
        if f != 5 or w != 2:
            continue
        t = {"name": None, "dims": [], "data_type": None, "raw": None}
        for tf, tw, ts, te in _fields(buf, s, e):
            if tf == 1 and tw == 0:
                t["dims"].append(ts)
            elif tf == 1 and tw == 2:  # packed repeated int64
                p = ts
                while p < te:
                    d, p = _varint(buf, p)
                    t["dims"].append(d)
            elif tf == 2 and tw == 0:
                t["data_type"] = ts
            elif tf == 8 and tw == 2:
                t["name"] = bytes(buf[ts:te]).decode("utf-8")
            elif tf == 9 and tw == 2:
                t["raw"] = (ts, te)
        out.append(t)
    return out


# -----------------------------------------------------------------------------
# Ops: the recipe interpreter (src/converter/ops.ts implements the same, in the same order of float32 operations)


def run_op(op: str, args: List[np.ndarray], attrs: Optional[dict] = None) -> np.ndarray:
    """One recipe op on float32 arrays; returns float32."""
    a = [np.asarray(x, dtype=np.float32) for x in args]
    if op == "identity":
        return a[0]
    if op == "transpose":
        assert a[0].ndim == 2, f"transpose takes a 2-D tensor, got shape {a[0].shape}"
        return np.ascontiguousarray(a[0].T)
    if op in ("bn_fold_weight", "bn_fold_bias"):
        # torch.onnx's Conv+BatchNorm fusion (eval peephole), step by step in float32:
        #   s = bn_w / sqrt(bn_var + eps);  w' = conv_w * s[:, None, None, None];  b' = bn_b - bn_mean * s
        conv_w, bn_w, bn_b, bn_mean, bn_var = a
        s = bn_w / np.sqrt(bn_var + np.float32((attrs or {})["eps"]))
        if op == "bn_fold_weight":
            return conv_w * s.reshape((-1,) + (1,) * (conv_w.ndim - 1))
        return bn_b - bn_mean * s
    raise TemplateError(f"unknown template op {op!r}")


def tensor_bytes(piece: dict, arrays: Dict[str, np.ndarray]) -> bytes:
    """The bytes a tensor piece writes: its op on float32 arguments, cast to its dtype, little-endian."""
    out = run_op(piece["op"], [arrays[n] for n in piece["args"]], piece.get("attrs"))
    n = int(np.prod(piece["shape"], dtype=np.int64))
    if out.size != n:
        raise TemplateError(f"{piece['op']}({', '.join(piece['args'])}) gives {out.size} elements, the graph "
                            f"stores {n} ({piece['shape']})")
    return out.astype(NUMPY[piece["dtype"]]).tobytes()  # astype(float16): round to nearest even


# -----------------------------------------------------------------------------
# Provenance: which state-dict tensors each initialiser comes from


def _digest(a: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(a, dtype="<f4").tobytes()).digest()


def conv_bn_pairs(model: nn.Module) -> List[Tuple[str, str, float]]:
    """(conv prefix, bn prefix, eps) for every BatchNorm2d and the Conv2d registered just before it in the same
    parent: stem conv1/bn1.., Bottleneck conv1/bn1.., downsample 0/1. These are the pairs the exporter fuses."""
    pairs = []
    for parent_name, parent in model.named_modules():
        prev = None
        for name, child in parent.named_children():
            full = f"{parent_name}.{name}" if parent_name else name
            if isinstance(child, nn.BatchNorm2d) and prev is not None:
                assert prev[1].bias is None, f"{prev[0]} has a bias; the fold recipe assumes none (CLIP's have none)"
                pairs.append((prev[0], full, float(child.eps)))
            prev = (full, child) if isinstance(child, nn.Conv2d) else None
    return pairs


def candidate_recipes(model: nn.Module, state: Dict[str, np.ndarray]) -> Dict[bytes, List[dict]]:
    """digest of float32 bytes -> recipes that produce them."""
    found: Dict[bytes, List[dict]] = {}

    def add(recipe, arr):
        found.setdefault(_digest(arr), []).append(recipe)

    for name, a in state.items():
        add({"op": "identity", "args": [name]}, a)
        if a.ndim == 2 and min(a.shape) > 1:  # a [1, N] transposed has the same bytes: identity covers it
            add({"op": "transpose", "args": [name]}, run_op("transpose", [a]))
    for conv, bn, eps in conv_bn_pairs(model):
        args = [f"{conv}.weight", f"{bn}.weight", f"{bn}.bias", f"{bn}.running_mean", f"{bn}.running_var"]
        if all(a in state for a in args):
            for op in ("bn_fold_weight", "bn_fold_bias"):
                add({"op": op, "args": args, "attrs": {"eps": eps}}, run_op(op, [state[a] for a in args], {"eps": eps}))
    return found


# -----------------------------------------------------------------------------
# Input roles


def input_key(name: str) -> Optional[Tuple[str, str]]:
    """Our state-dict name -> (input role, the key the published file holds it under), or None."""
    if name.startswith("visual."):
        return "clip", name
    if name.startswith("text."):
        return "clip", name[len("text."):]  # OpenAI's archive keeps the text tower at the top level
    if name.startswith(("clip_project.", "gpt.")):
        return "clipcap", name
    return None


def model_inputs(model: ClipCap) -> Dict[str, dict]:
    """Per role: every tensor the role's file must provide (its key there -> shape), and what it may also hold."""
    params = {"clip": OrderedDict(), "clipcap": OrderedDict()}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked") or k in TEXT_UNUSED:
            continue  # a training counter (absent from some published files); CLIP's temperature
        role_key = input_key(k)
        assert role_key is not None, f"state-dict key {k} belongs to no input role"
        params[role_key[0]][role_key[1]] = list(v.shape)
    clip_ignore = CLIP_IGNORE if model.text is not None else CLIP_IGNORE_TEXT + CLIP_IGNORE
    return {"clip": {"params": params["clip"], "ignore": clip_ignore},
            "clipcap": {"params": params["clipcap"], "ignore": CLIPCAP_IGNORE, "optional": CLIPCAP_OPTIONAL}}


def check_inputs(template: dict, state_dicts: Dict[str, Dict[str, torch.Tensor]]) -> None:
    """Every role present; per role, every missing, unexpected and mis-shaped key listed in one TemplateError."""
    problems = []
    for role, spec in template["inputs"].items():
        sd = state_dicts.get(role)
        if sd is None:
            problems.append(f"input {role!r}: not given")
            continue
        ignore = [re.compile(p) for p in spec.get("ignore", [])]
        optional = spec.get("optional", {})
        missing = [k for k in spec["params"] if k not in sd]
        unexpected = [k for k in sd if k not in spec["params"] and k not in optional
                      and not any(p.search(k) for p in ignore)]
        shapes = [f"{k}: given {list(sd[k].shape)}, template {s}" for k, s in spec["params"].items()
                  if k in sd and list(sd[k].shape) != list(s)]
        shapes += [f"{k}: given {sd[k].dtype}, a weight must be floating point" for k in spec["params"]
                   if k in sd and not sd[k].is_floating_point()]
        unequal = [f"{k} differs from {other}" for k, other in optional.items()
                   if k in sd and other in sd and (sd[k].shape != sd[other].shape or not torch.equal(sd[k], sd[other]))]
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes),
                            ("must be equal", unequal)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", … ({len(keys) - 12} more)" if len(keys) > 12 else "")
                problems.append(f"input {role!r} {label} ({len(keys)}): {shown}")
    if problems:
        raise TemplateError(f"weights do not fit template {template['id']}:\n  " + "\n  ".join(problems))


# -----------------------------------------------------------------------------
# Building a template


def _as_float32(state: dict) -> Dict[str, np.ndarray]:
    return {k: v.detach().float().contiguous().numpy() for k, v in state.items() if v.is_floating_point()}


def graph_pieces(buf: bytes, recipes_by_name: Dict[str, dict], role: str) -> Tuple[bytes, List[dict]]:
    """Cut every recipe-backed initialiser's raw_data out of buf: (skeleton, pieces in file order)."""
    skeleton, pieces, pos, skel_pos = [], [], 0, 0
    for t in onnx_initializers(buf):
        r = recipes_by_name.get(t["name"])
        if r is None:
            continue  # a constant of the graph (shapes, masks, the LM head's zero bias): stays in the skeleton
        if t["raw"] is None:
            raise TemplateError(f"{role}.onnx: initialiser {t['name']} does not store its values in raw_data")
        if t["data_type"] not in DTYPES:
            raise TemplateError(f"{role}.onnx: initialiser {t['name']} has ONNX data type {t['data_type']}")
        start, end = t["raw"]
        if start > pos:
            skeleton.append(buf[pos:start])
            pieces.append({"copy": [skel_pos, skel_pos + start - pos]})
            skel_pos += start - pos
        pieces.append({**r, "dtype": DTYPES[t["data_type"]][0], "shape": t["dims"], "_range": [start, end]})
        pos = end
    if pos < len(buf):
        skeleton.append(buf[pos:])
        pieces.append({"copy": [skel_pos, skel_pos + len(buf) - pos]})
    return b"".join(skeleton), pieces


def assemble(skeleton: bytes, pieces: List[dict], arrays: Dict[str, np.ndarray]) -> Iterator[bytes]:
    for p in pieces:
        yield skeleton[p["copy"][0]:p["copy"][1]] if "copy" in p else tensor_bytes(p, arrays)


def build_template(cfg: ClipCapConfig, precision: str, out_dir: str, template_id: str, seed: int = 0,
                   manifest_kw: Optional[dict] = None, log=print) -> dict:
    """Export a random-weight model of this config, derive and check every piece, write the template."""
    if precision not in TEMPLATE_PRECISIONS:
        raise TemplateError(f"templates support precision {' or '.join(TEMPLATE_PRECISIONS)}, not {precision!r}: "
                            "int8 quantises each weight with per-column scales computed at export, not a fixed "
                            "per-tensor recipe")
    t0 = time.time()
    model = random_model(cfg, seed)
    state = _as_float32(model.state_dict())
    inputs = model_inputs(model)
    keys = [k for spec in inputs.values() for k in spec["params"]]
    assert len(keys) == len(set(keys)), "two input roles hold the same key: recipes could not name it"
    manifest_kw = {**text_manifest_of(cfg), **(manifest_kw or {})}
    graphs, skeletons, used = [], {}, set()
    with tempfile.TemporaryDirectory(prefix="template-") as tmp:
        # exactly export_pack's steps, so the bytes are the ones export_pack writes for these weights
        paths = export_fp32_graphs(model, tmp)
        log(f"exported fp32 graphs in {time.time() - t0:.0f}s")
        candidates = candidate_recipes(model, state)
        for role in paths:  # vision, mapper, decoder, and text when the model has the text tower
            with open(paths[role], "rb") as f:
                buf32 = f.read()
            by_name = {}
            for t in onnx_initializers(buf32):
                if t["data_type"] != ONNX_FLOAT or t["raw"] is None:
                    continue
                found = candidates.get(hashlib.sha1(buf32[t["raw"][0]:t["raw"][1]]).digest(), [])
                if len(found) > 1:
                    raise TemplateError(f"{role}.onnx: initialiser {t['name']} matches several recipes "
                                        f"({found}); the random weights are not distinct")
                if found:
                    by_name[t["name"]] = found[0]
            del buf32
            if precision == "fp16":
                to_fp16_storage(paths[role])
                # to_fp16_storage renames a converted initialiser X to X_fp16 and stores astype(float16)
                by_name.update({n + "_fp16": r for n, r in list(by_name.items())})
            with open(paths[role], "rb") as f:
                buf = f.read()
            skeleton, pieces = graph_pieces(buf, by_name, role)
            for p in pieces:  # the recipe interpreter must rebuild every tensor exactly
                if "op" in p:
                    s, e = p.pop("_range")
                    if tensor_bytes(p, state) != buf[s:e]:
                        raise TemplateError(f"{role}.onnx: initialiser rebuilt by {p['op']}({', '.join(p['args'])}) "
                                            f"as {p['dtype']} {p['shape']} differs from the exported bytes [{s}, {e})")
            if b"".join(assemble(skeleton, pieces, state)) != buf:
                raise TemplateError(f"{role}.onnx: skeleton and pieces do not reassemble the exported file")
            for p in pieces:  # recipes name the published files' keys (checked above under our names)
                if "op" in p:
                    p["args"] = [input_key(a)[1] for a in p["args"]]
                    used.update(p["args"])
            skeletons[role] = skeleton
            graphs.append({"role": role, "path": f"{role}.onnx", "skeleton": f"{role}.skel", "bytes": len(buf),
                           "skeletonBytes": len(skeleton), "pieces": pieces})
            log(f"{role}: {len(buf) / 1e6:.1f} MB -> skeleton {len(skeleton)} bytes, "
                f"{sum('op' in p for p in pieces)} tensors")
        unused = [k for spec in inputs.values() for k in spec["params"] if k not in used]
        if unused:
            raise TemplateError(f"parameters no initialiser was derived from ({len(unused)}): {', '.join(unused[:12])}"
                                " — the exporter transformed them in a way no template op describes")
        build_tokenizer_json(os.path.join(tmp, "tokenizer.json"))
        extra_files = ["tokenizer.json"]
        if TEXT_ROLE in paths:
            clip_tokenizer.build_text_tokenizer_json(os.path.join(tmp, TEXT_TOKENIZER))
            extra_files.append(TEXT_TOKENIZER)
        manifest = pack_manifest(model, tmp, "template", "template", precision, {}, **manifest_kw)
        for k in ("id", "version", "name", "description", "provenance", "files"):
            del manifest[k]
        template = {"format": "clipcap-template", "formatVersion": FORMAT_VERSION, "id": template_id,
                    "precision": precision, "manifest": manifest, "inputs": inputs, "keyMaps": {}, "graphs": graphs}
        os.makedirs(out_dir, exist_ok=True)
        for role, skel in skeletons.items():
            with open(os.path.join(out_dir, f"{role}.skel"), "wb") as f:
                f.write(skel)
        for name in extra_files:
            shutil.copyfile(os.path.join(tmp, name), os.path.join(out_dir, name))
    write_template_json(template, os.path.join(out_dir, "template.json"))
    log(f"template {template_id} written to {out_dir} in {time.time() - t0:.0f}s")
    return template


def write_template_json(template: dict, path: str):
    """Compact JSON, one piece per line (a diff of two templates stays readable)."""
    def dump(x):
        return json.dumps(x, separators=(",", ":"))
    lines = ["{"]
    head = {k: v for k, v in template.items() if k != "graphs"}
    for k, v in head.items():
        lines.append(f"{dump(k)}:{dump(v)},")
    lines.append('"graphs":[')
    for gi, g in enumerate(template["graphs"]):
        meta = dump({k: v for k, v in g.items() if k != "pieces"})[:-1]
        lines.append(meta + ',"pieces":[')
        lines.append(",\n".join(dump(p) for p in g["pieces"]))
        lines.append("]}" + ("," if gi < len(template["graphs"]) - 1 else ""))
    lines.append("]}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# -----------------------------------------------------------------------------
# Filling a template (the Python reference for src/converter/convert.ts)


def load_template(template_dir: str) -> dict:
    with open(os.path.join(template_dir, "template.json")) as f:
        t = json.load(f)
    if t.get("format") != "clipcap-template" or t.get("formatVersion") != FORMAT_VERSION:
        raise TemplateError(f"{template_dir}/template.json is not a clipcap-template version {FORMAT_VERSION}")
    return t


def without_text(template: dict) -> dict:
    """The template as a pack without CLIP's text tower (the user turned the feature off): no text graph, no text
    section, and the keys only the text graph reads ignored like the other keys a file may hold and we do not use.
    src/converter/template.ts: withoutText does the same."""
    graphs = [g for g in template["graphs"] if g["role"] != TEXT_ROLE]
    if len(graphs) == len(template["graphs"]):
        return template
    read = {a for g in graphs for p in g["pieces"] for a in p.get("args", [])}
    inputs = {}
    for role, spec in template["inputs"].items():
        text_only = [k for k in spec["params"] if k not in read and k not in spec.get("optional", {}).values()]
        inputs[role] = {**spec, "params": {k: s for k, s in spec["params"].items() if k not in text_only},
                        "ignore": spec.get("ignore", []) + ["^" + re.escape(k) + "$" for k in text_only]}
    manifest = {k: v for k, v in template["manifest"].items() if k != "text"}
    return {**template, "inputs": inputs, "manifest": manifest, "graphs": graphs}


def fill_template(template_dir: str, state_dicts: Dict[str, Dict[str, torch.Tensor]], out_dir: str,
                  meta: Optional[dict] = None, text: bool = True) -> dict:
    """Write the pack's .onnx files and tokenizer.json (text-tokenizer.json too, with a text graph) from a template
    and weights ({role: {key: tensor}}, the published files' keys); with meta (id, version, name, description,
    provenance) also pack.json, as export_pack writes it. text=False leaves CLIP's text tower out even when the
    template has it. Returns the files entries {key: {path, bytes, sha256}}, keyed as pack.json's files."""
    template = load_template(template_dir)
    if not text:
        template = without_text(template)
    check_inputs(template, state_dicts)
    arrays: Dict[str, np.ndarray] = {}
    for role, spec in template["inputs"].items():
        arrays.update(_as_float32({k: state_dicts[role][k] for k in spec["params"]}))
    os.makedirs(out_dir, exist_ok=True)
    files = {}
    for g in template["graphs"]:
        with open(os.path.join(template_dir, g["skeleton"]), "rb") as f:
            skeleton = f.read()
        h, n = hashlib.sha256(), 0
        with open(os.path.join(out_dir, g["path"]), "wb") as f:
            for chunk in assemble(skeleton, g["pieces"], arrays):
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
        if n != g["bytes"]:
            raise TemplateError(f"{g['path']}: wrote {n} bytes, the template says {g['bytes']}")
        files[g["role"]] = {"path": g["path"], "bytes": n, "sha256": h.hexdigest()}
    tokenizers = [("tokenizer", "tokenizer.json")]
    if TEXT_ROLE in files:
        tokenizers.append(("textTokenizer", TEXT_TOKENIZER))
    for key, name in tokenizers:
        shutil.copyfile(os.path.join(template_dir, name), os.path.join(out_dir, name))
        with open(os.path.join(out_dir, name), "rb") as f:
            tok = f.read()
        files[key] = {"path": name, "bytes": len(tok), "sha256": hashlib.sha256(tok).hexdigest()}
    files = {k: files[k] for k in ("vision", "mapper", "decoder", "tokenizer", "text", "textTokenizer") if k in files}
    if meta is not None:
        m = template["manifest"]
        manifest = {"format": m["format"], "formatVersion": m["formatVersion"],
                    **{k: meta[k] for k in ("id", "version", "name", "description", "provenance")},
                    **{k: v for k, v in m.items() if k not in ("format", "formatVersion")}, "files": files}
        with open(os.path.join(out_dir, "pack.json"), "w") as f:
            json.dump(manifest, f, indent=2)
    return files


def split_roles(state: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, torch.Tensor]]:
    """Our full state dict split into the template's input roles, under the published files' keys."""
    out: Dict[str, Dict[str, torch.Tensor]] = {"clip": {}, "clipcap": {}}
    for k, v in state.items():
        role_key = input_key(k)
        if role_key is not None:
            out[role_key[0]][role_key[1]] = v
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["toy", "small", *CONFIGS], help="the architecture (see CONFIGS)")
    ap.add_argument("--from-checkpoint", help="take the architecture from a model.save_checkpoint file instead")
    ap.add_argument("--precision", default="fp16", choices=("fp32", "fp16", "int8"))
    ap.add_argument("--out", help="default packs/templates/<config>-<precision>")
    ap.add_argument("--id", help="default <config>-<precision>")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if a.from_checkpoint:
        blob = torch.load(a.from_checkpoint, map_location="cpu")
        cfg, kw = ClipCapConfig.from_dict(blob["config"]), {}
        if a.config:
            kw = named_config(a.config)[1]
        base = a.config or os.path.splitext(os.path.basename(a.from_checkpoint))[0]
    elif a.config:
        cfg, kw = named_config(a.config)
        base = a.config
    else:
        ap.error("give --config or --from-checkpoint")
    tid = a.id or f"{base}-{a.precision}"
    out = a.out or os.path.join("packs", "templates", tid)
    t = time.time()
    try:
        template = build_template(cfg, a.precision, out, tid, a.seed, kw)
    except TemplateError as e:
        raise SystemExit(f"template {tid}: {e}") from None
    skel = sum(g["skeletonBytes"] for g in template["graphs"])
    full = sum(g["bytes"] for g in template["graphs"])
    print(f"{tid}: skeletons {skel} bytes in all ({', '.join(str(g['skeletonBytes']) for g in template['graphs'])}), "
          f"packs {full / 1e6:.1f} MB of graphs, template.json {os.path.getsize(os.path.join(out, 'template.json'))} "
          f"bytes, {time.time() - t:.0f}s")


if __name__ == "__main__":
    main()
