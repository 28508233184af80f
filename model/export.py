"""
Export a ClipCap model as a *model pack*: three ONNX graphs, tokenizer.json and pack.json (docs/pack-format.md),
plus text.onnx and text-tokenizer.json when the model has CLIP's text tower, at one of five precisions:
  fp32  as trained;
  fp16  weights stored in half precision and cast back to fp32 when the session loads (half the download);
  int8  dynamic quantisation: weights int8 per output column, activations quantised per call
        (DynamicQuantizeLinear + MatMulInteger), the form that ran fastest in onnxruntime-web's wasm;
  q4, q8  weight-only MatMulNBits (onnxruntime contrib op), 4 or 8 bits in blocks of 32 along K with a scale and
        zero point each, the tied token table stored once in the same form (model/lowbit.py). A third to a sixth of
        fp32, but onnxruntime-web's wasm runs MatMulNBits 11-26x slower than fp32 per one-row product
        (bench/lowbit-probe.bench.ts): for WebGPU and native runtimes, not the wasm default.

    /usr/bin/python3 -m model.export --checkpoint ckpt.pt --out packs/mine --precision int8
"""

import argparse
import hashlib
import inspect
import json
import os
import warnings
from typing import Dict, List, Optional

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from . import clip_tokenizer
from .model import EOS_ID, PERIOD_ID, ClipCap, load_checkpoint
from .tokenizer import build_tokenizer_json, tokenizer_config

OPSET = 17
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8", "q4", "q8")
# weight-only MatMulNBits precisions (model/lowbit.py): bits and block size along K
NBITS_PRECISIONS = {"q4": (4, 32), "q8": (8, 32)}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
CLIP_SCORE_WEIGHT = 2.5  # CLIPScore's w (Hessel et al. 2021)
CALIBRATION_METHODS = ("heldout-quantile", "assumed")
# A text tower whose thresholds were not measured on the pack (build_pack.py --text, the random packs): CLIPScore as
# Hessel et al. 2021 (arXiv:2104.08718) define it for CLIP ViT-B/32, w = 2.5, which spreads the cosines of captions
# they saw (about 0 to 0.4) over about 0..1. 0.5 is cos 0.2: an assumption between a fitting caption and an unrelated
# one, not a measurement; re-ranking weighs a clipScore like a length-normalised log-probability (weight 1).
ASSUMED_TEXT_MANIFEST = {
    "rerankWeight": 1.0,
    "gateThreshold": 0.5,
    "calibration": {"method": "assumed", "note": (
        "Not measured on this pack. CLIPScore of CLIP ViT-B/32 with w = 2.5 (Hessel et al. 2021, "
        "arXiv:2104.08718), which spreads typical caption cosines (about 0 to 0.4) over about 0..1; the gate at "
        "0.5 (cosine 0.2) and the re-ranking weight 1.0 are assumptions, not held-out measurements.")},
}


class ExportError(RuntimeError):
    """The model could not be written as a pack; the message says which file and why."""


# -----------------------------------------------------------------------------
# Graph wrappers with the pack's input and output names


class _ModelGraph(nn.Module):
    """One of the model's parts as a graph: a subclass's forward calls it on `self.model`."""

    def __init__(self, model: ClipCap):
        super().__init__()
        self.model = model


class VisionGraph(_ModelGraph):
    def forward(self, pixel_values):
        return self.model.encode_image(pixel_values)


class MapperGraph(_ModelGraph):
    def forward(self, image_embeds):
        return self.model.clip_project(image_embeds)  # L2 normalisation, when the pack asks for it, is the engine's


class DecoderGraph(nn.Module):
    def __init__(self, model: ClipCap):
        super().__init__()
        self.gpt = model.gpt
        self.n_layer = model.cfg.gpt2.n_layer

    def forward(self, input_ids, inputs_embeds, attention_mask, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(self.n_layer)]
        logits, presents = self.gpt.decode_step(input_ids, inputs_embeds, attention_mask, past)
        return (logits, *[t for kv in presents for t in kv])


class TextGraph(_ModelGraph):
    def forward(self, input_ids):
        return self.model.encode_text(input_ids)


def decoder_io_names(n_layer: int):
    past = [f"past_key_values.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    return ["input_ids", "inputs_embeds", "attention_mask", *past], ["logits", *present]


# torch >= 2.9 exports through dynamo by default, which writes opset-18 ops into an opset-17 graph; the TorchScript
# exporter is the one these graphs are written and tested with (torch 1.13 here has no `dynamo` argument at all).
TORCHSCRIPT_EXPORTER = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def _export(module: nn.Module, args, path: str, inputs: List[str], outputs: List[str], axes: Dict[str, Dict[int, str]]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape asserts, which hold for every valid input
        torch.onnx.export(
            module.eval(), args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
            opset_version=OPSET, do_constant_folding=True, **TORCHSCRIPT_EXPORTER,
        )
    onnx.checker.check_model(path)


def export_fp32_graphs(model: ClipCap, out_dir: str) -> Dict[str, str]:
    """Write vision.onnx, mapper.onnx and decoder.onnx, and text.onnx when the model has a text tower, in fp32.
    Returns role -> path."""
    cfg = model.cfg
    model = model.eval()
    roles = ("vision", "mapper", "decoder") + (("text",) if model.text is not None else ())
    paths = {r: os.path.join(out_dir, f"{r}.onnx") for r in roles}
    S, D, E = cfg.vision.image_size, cfg.vision.output_dim, cfg.gpt2.n_embd
    H, hd, L = cfg.gpt2.n_head, cfg.gpt2.n_embd // cfg.gpt2.n_head, cfg.gpt2.n_layer
    with torch.no_grad():
        _export(VisionGraph(model), (torch.randn(2, 3, S, S),), paths["vision"], ["pixel_values"], ["image_embeds"],
                {"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}})
        _export(MapperGraph(model), (torch.randn(2, D),), paths["mapper"], ["image_embeds"], ["prefix_embeds"],
                {"image_embeds": {0: "batch"}, "prefix_embeds": {0: "batch"}})
        # trace with every dynamic dimension distinct and non-zero, so none is baked in as a constant
        B, n_ids, n_emb, past = 2, 2, 3, 4
        past_flat = [torch.randn(B, H, past, hd) for _ in range(2 * L)]
        args = (torch.randint(0, 100, (B, n_ids)), torch.randn(B, n_emb, E),
                torch.ones(B, past + n_emb + n_ids, dtype=torch.long), *past_flat)
        inputs, outputs = decoder_io_names(L)
        axes = {"input_ids": {0: "batch", 1: "n_ids"}, "inputs_embeds": {0: "batch", 1: "n_embeds"},
                "attention_mask": {0: "batch", 1: "total"}, "logits": {0: "batch"}}
        axes.update({n: {0: "batch", 2: "past"} for n in inputs[3:]})
        axes.update({n: {0: "batch", 2: "total"} for n in outputs[1:]})
        _export(DecoderGraph(model), args, paths["decoder"], inputs, outputs, axes)
        if "text" in paths:
            # rows of different lengths, padded with 0 after the eot, so the pooling index is not traced as a constant
            ids = torch.tensor([[clip_tokenizer.BOS_ID, 320, 1125, 539, clip_tokenizer.EOT_ID],
                                [clip_tokenizer.BOS_ID, 320, clip_tokenizer.EOT_ID, 0, 0]])
            ids = ids.clamp(max=cfg.text.vocab_size - 1)  # a toy vocabulary may be smaller (its eot still the largest)
            _export(TextGraph(model), (ids,), paths["text"], ["input_ids"], ["text_embeds"],
                    {"input_ids": {0: "batch", 1: "n"}, "text_embeds": {0: "batch"}})
    return paths


class HFDecoderGraph(nn.Module):
    """GPT-2 alone with Hugging Face optimum's decoder I/O (input_ids, attention_mask, past -> logits for every
    position, present): the layout transformers.js's text-generation loads. Only the benchmark's peer uses it."""

    def __init__(self, model: ClipCap):
        super().__init__()
        self.gpt = model.gpt
        self.n_layer = model.cfg.gpt2.n_layer

    def forward(self, input_ids, attention_mask, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(self.n_layer)]
        logits, presents = self.gpt(self.gpt.transformer.wte(input_ids), attention_mask, past)
        return (logits, *[t for kv in presents for t in kv])


def export_transformersjs(model: ClipCap, out_dir: str, int8: bool):
    """The same GPT-2 weights as a transformers.js model folder (config.json, tokenizer, onnx/model[_quantized].onnx),
    so `npm run bench` can time transformers.js's own generate() against our decoder on identical weights."""
    cfg = model.cfg.gpt2
    L, H, hd = cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head
    os.makedirs(os.path.join(out_dir, "onnx"), exist_ok=True)
    path = os.path.join(out_dir, "onnx", "model_quantized.onnx" if int8 else "model.onnx")
    dec_in, dec_out = decoder_io_names(L)
    inputs, outputs = ["input_ids", "attention_mask", *dec_in[3:]], dec_out
    B, T, past = 2, 3, 4
    args = (torch.randint(0, 100, (B, T)), torch.ones(B, past + T, dtype=torch.long),
            *[torch.randn(B, H, past, hd) for _ in range(2 * L)])
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
            "logits": {0: "batch", 1: "seq"}}
    axes.update({n: {0: "batch", 2: "past"} for n in inputs[2:]})
    axes.update({n: {0: "batch", 2: "total"} for n in outputs[1:]})
    with torch.no_grad():
        _export(HFDecoderGraph(model), args, path, inputs, outputs, axes)
    if int8:
        to_int8_dynamic(path)
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": cfg.vocab_size,
              "n_positions": cfg.n_positions, "n_ctx": cfg.n_positions, "n_embd": cfg.n_embd, "n_layer": L,
              "n_head": H, "layer_norm_epsilon": cfg.layer_norm_epsilon, "bos_token_id": EOS_ID,
              "eos_token_id": EOS_ID, "use_cache": True}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": EOS_ID, "eos_token_id": EOS_ID}, f)
    build_tokenizer_json(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2)


# -----------------------------------------------------------------------------
# Precision conversions on the ONNX graphs


def to_fp16_storage(path: str, min_elements: int = 1024):
    """Store large float initialisers as float16 with a Cast back to float32 in front: compute stays fp32,
    the session folds the Casts at load, and the file halves."""
    m = onnx.load(path)
    g = m.graph
    casts, keep = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type == TensorProto.FLOAT and arr.size >= min_elements:
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
            keep.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "_cast"))
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def _quantize_columns(w: np.ndarray):
    """Symmetric int8 per output column: w (K, N) ~= q * scale[N]."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale


def _weight_operand(n, inits):
    """(weight as [K, N] array, its initialiser name, bias name or None) when node n is a MatMul or a plain Gemm
    (alpha = beta = 1, A not transposed) with a constant 2-D float right operand; else None."""
    if n.op_type == "MatMul" and len(n.input) == 2:
        w = inits.get(n.input[1])
        bias = None
    elif n.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            return None
        w = inits.get(n.input[1])
        bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
    else:
        return None
    if w is None or len(w.dims) != 2 or w.data_type != TensorProto.FLOAT:
        return None
    arr = numpy_helper.to_array(w)
    if n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute):
        arr = arr.T  # Gemm stores nn.Linear's [out, in]; MatMulInteger wants [in, out]
    return arr, w.name, bias


def _subgraphs(g):
    """The graphs nested in g's nodes (If branches, Loop and Scan bodies), recursively, outermost first."""
    for n in g.node:
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                yield sub
                yield from _subgraphs(sub)


def _int8_matmul_nodes(base: str, a: str, w_q: str, w_scale: str, out: str, bias: Optional[str]):
    """DynamicQuantizeLinear(A) -> MatMulInteger(A_u8, W_s8) -> Cast -> Mul(a_scale * w_scale) [-> Add(bias)]:
    the chain onnxruntime fuses into one DynamicQuantizeMatMul kernel."""
    scaled = f"{base}_scaled" if bias else out
    nodes = [
        helper.make_node("DynamicQuantizeLinear", [a], [f"{base}_aq", f"{base}_as", f"{base}_az"], name=f"{base}_dql"),
        helper.make_node("MatMulInteger", [f"{base}_aq", w_q, f"{base}_az"], [f"{base}_i32"], name=f"{base}_mmi"),
        helper.make_node("Cast", [f"{base}_i32"], [f"{base}_f32"], to=TensorProto.FLOAT, name=f"{base}_cast"),
        helper.make_node("Mul", [f"{base}_as", w_scale], [f"{base}_s"], name=f"{base}_scl"),
        helper.make_node("Mul", [f"{base}_f32", f"{base}_s"], [scaled], name=f"{base}_mul"),
    ]
    if bias:
        nodes.append(helper.make_node("Add", [scaled, bias], [out], name=f"{base}_bias"))
    return nodes


def _int8_gather_nodes(name: str, ids: str, o: str):
    """Gather(name_q, ids) -> Cast -> Mul(Gather(name_scale, ids) unsqueezed on name_last_axis) = o: rows of an int8
    table with a float scale per row, dequantised after the lookup."""
    return [
        helper.make_node("Gather", [name + "_q", ids], [o + "_q"], axis=0, name=o + "_gq"),
        helper.make_node("Cast", [o + "_q"], [o + "_f"], to=TensorProto.FLOAT, name=o + "_cast"),
        helper.make_node("Gather", [name + "_scale", ids], [o + "_s"], axis=0, name=o + "_gs"),
        helper.make_node("Unsqueeze", [o + "_s", name + "_last_axis"], [o + "_s1"], name=o + "_unsq"),
        helper.make_node("Mul", [o + "_f", o + "_s1"], [o], name=o + "_mul"),
    ]


def _count_uses(g) -> Dict[str, int]:
    """name -> how many node inputs of graph g (not its subgraphs) read it."""
    uses: Dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    return uses


def _tied_table(g, inits, uses):
    """GPT-2's tied token table: an initialiser [V, E] read by exactly one Gather (the embedding, axis 0) and one
    Gemm with transB (the LM head). Returns (name, gather node, gemm node) or None."""
    for name, init in inits.items():
        if uses.get(name) != 2 or len(init.dims) != 2 or init.data_type != TensorProto.FLOAT:
            continue
        readers = [n for n in g.node if name in n.input]
        gather = [n for n in readers if n.op_type == "Gather" and n.input[0] == name
                  and all(a.i == 0 for a in n.attribute if a.name == "axis")]
        gemm = [n for n in readers if n.op_type == "Gemm" and n.input[1] == name
                and any(a.name == "transB" and a.i for a in n.attribute)
                and not any(a.name == "transA" and a.i for a in n.attribute)
                and all(helper.get_attribute_value(a) == 1.0 for a in n.attribute if a.name in ("alpha", "beta"))]
        if len(gather) == 1 and len(gemm) == 1:
            return name, gather[0], gemm[0]
    return None


def to_int8_dynamic(path: str, min_elements: int = 4096):
    """Rewrite every MatMul or Gemm whose right operand is a 2-D float weight as a dynamically quantised int8
    product (`_int8_matmul_nodes`), weights symmetric int8 per output column.

    GPT-2's tied token table (embedding Gather + LM head) becomes ONE int8 table [V, E] with a scale per token,
    still stored once: the embedding gathers int8 rows and scales them; the LM head multiplies by its transpose,
    which onnxruntime folds into a constant when the session loads. The LM head is the largest product of a decode
    step (E x V = 38.6M weights for GPT-2 small), so leaving it in fp32 would leave most of a step's memory traffic
    unquantised. Any other weight that feeds more than one node stays fp32.

    Nodes inside subgraphs (the If branches of a merged decoder, bench/py/peer_distilvit.py) are rewritten too when
    their weight is an initialiser of the outer graph: the int8 weight and its scales are stored once, in the outer
    graph, and uses are counted graph by graph (a weight read once in each branch counts as read once)."""
    m = onnx.load(path)
    g = m.graph
    graphs = [g, *_subgraphs(g)]  # outermost first
    inits = {i.name: i for i in g.initializer}
    uses = [_count_uses(sg) for sg in graphs]  # per graph
    tied = [_tied_table(sg, inits, uses[k]) for k, sg in enumerate(graphs)]
    found_in = [[(n, _weight_operand(n, inits)) for n in sg.node] for sg in graphs]
    # Which outer initialisers to quantise: every graph that reads one must read it the same way (as the tied
    # table, or exactly once as a MatMul/Gemm weight of the same [K, N]).
    role: Dict[str, Optional[str]] = {}  # name -> "tied" | "matmul" | None (stays fp32)
    orientation: Dict[str, bytes] = {}
    for k, sg in enumerate(graphs):
        here: Dict[str, Optional[str]] = {}
        if tied[k]:
            here[tied[k][0]] = "tied"
        for n, found in found_in[k]:
            if found is None or found[1] in here:
                continue
            arr, wname, _ = found
            key = str(arr.shape).encode() + arr[:1, :16].tobytes()  # cheap check: every reader sees the same [K, N]
            same = orientation.setdefault(wname, key) == key
            here[wname] = "matmul" if same and uses[k].get(wname, 0) == 1 and arr.size >= min_elements else None
        for name in uses[k]:
            if name in inits:
                r = here.get(name)
                role[name] = r if role.get(name, r) == r else None
    stored, drop = set(), set()
    outer_nodes, outer_outputs = [], set()  # nodes the subgraphs need in the outer graph (the LM head's transpose)
    # innermost graphs first, so that a parent rewritten later copies its already rewritten subgraphs
    for k in reversed(range(len(graphs))):
        sg = graphs[k]
        scope = "" if k == 0 else f"{sg.name}/"  # names made here must not collide with a sibling branch's
        t = tied[k] if tied[k] and role.get(tied[k][0]) == "tied" else None
        new_nodes = []
        for n, found in found_in[k]:
            if t and n is t[1]:  # embedding: Gather int8 rows and their scales, then scale
                name, o = t[0], n.output[0]
                new_nodes += _int8_gather_nodes(name, n.input[1], o)
                continue
            if t and n is t[2]:  # LM head: h @ table^T, the transpose folded at load
                name = t[0]
                bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
                transpose = helper.make_node("Transpose", [name + "_q"], [name + "_qT"], perm=[1, 0], name=name + "_T")
                if k == 0:
                    new_nodes.append(transpose)
                elif name + "_qT" not in outer_outputs:  # in the outer graph, where onnxruntime folds it at load
                    outer_nodes.append(transpose)
                    outer_outputs.add(name + "_qT")
                new_nodes += _int8_matmul_nodes(n.name or scope + name + "_head", n.input[0], name + "_qT",
                                                name + "_scale", n.output[0], bias)
                continue
            if found is None or role.get(found[1]) != "matmul":
                kept = onnx.NodeProto()
                kept.CopyFrom(n)
                new_nodes.append(kept)
                continue
            arr, wname, bias = found
            if wname not in stored:
                q, scale = _quantize_columns(arr)
                g.initializer.extend([numpy_helper.from_array(q, wname + "_q"),
                                      numpy_helper.from_array(scale, wname + "_scale")])
                stored.add(wname)
                drop.add(wname)
            new_nodes += _int8_matmul_nodes(n.name or scope + wname, n.input[0], wname + "_q", wname + "_scale",
                                            n.output[0], bias)
        if t and t[0] not in stored:
            name = t[0]
            q, scale = _quantize_columns(numpy_helper.to_array(inits[name]).T)  # a scale per token (row)
            g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(q.T), name + "_q"),
                                  numpy_helper.from_array(scale, name + "_scale"),
                                  numpy_helper.from_array(np.array([-1], dtype=np.int64), name + "_last_axis")])
            stored.add(name)
            drop.add(name)
        if k == 0:
            new_nodes = outer_nodes + new_nodes
        del sg.node[:]
        sg.node.extend(new_nodes)
    keep = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def to_int8_gather_tables(path: str, min_elements: int = 1 << 20):
    """Store each large embedding table read only by one Gather (axis 0) as int8 rows with a float scale per row:
    the Gather picks int8 rows and their scales and multiplies. For text.onnx, whose token table (49408 x 512 for
    ViT-B/32) is most of the file and which to_int8_dynamic leaves fp32 (it quantises products only). A table of
    GPT-2 is left alone: its own token table is tied to the head (to_int8_dynamic's), and the decoder's agreement
    figures were measured without this."""
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    readers: Dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    drop, new_nodes = set(), []
    for n in g.node:
        name = n.input[0] if n.op_type == "Gather" and n.input else None
        init = inits.get(name) if name else None
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        if (init is None or axis != 0 or len(init.dims) != 2 or init.data_type != TensorProto.FLOAT
                or len(readers[name]) != 1 or init.dims[0] * init.dims[1] < min_elements):
            new_nodes.append(n)
            continue
        q, scale = _quantize_columns(numpy_helper.to_array(init).T)  # a scale per row of the table
        g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(q.T), name + "_q"),
                              numpy_helper.from_array(scale, name + "_scale"),
                              numpy_helper.from_array(np.array([-1], dtype=np.int64), name + "_last_axis")])
        drop.add(name)
        o = n.output[0]
        new_nodes += _int8_gather_nodes(name, n.input[1], o)
    keep = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(new_nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)


# -----------------------------------------------------------------------------
# The pack


def file_entry(out_dir: str, name: str) -> dict:
    path = os.path.join(out_dir, name)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"path": name, "bytes": os.path.getsize(path), "sha256": h.hexdigest()}


def text_section(model: ClipCap, text_manifest: Optional[dict]) -> Optional[dict]:
    """pack.json's `text` section: the tower's sizes from the model; rerankWeight, gateThreshold and calibration
    from the builder, which must say them (and how it chose them) whenever the model has a text tower."""
    if model.text is None:
        if text_manifest is not None:
            raise ExportError("text_manifest given, but the model has no text tower (ClipCapConfig.text is None)")
        return None
    need = ("rerankWeight", "gateThreshold", "calibration")
    if not isinstance(text_manifest, dict) or any(k not in text_manifest for k in need):
        raise ExportError(f"the model has a text tower: the builder must give text_manifest with {', '.join(need)} "
                          '(calibration {"method": "assumed", "note": ...} when not measured on this pack)')
    extra = sorted(set(text_manifest) - set(need))
    if extra:
        raise ExportError(f"text_manifest: unknown keys {', '.join(extra)}")
    cal = text_manifest["calibration"]
    if not isinstance(cal, dict) or cal.get("method") not in CALIBRATION_METHODS:
        raise ExportError(f"text_manifest calibration.method must be one of {', '.join(CALIBRATION_METHODS)}")
    if cal["method"] == "assumed" and not cal.get("note"):
        raise ExportError("an assumed calibration needs a note saying where its figures come from")
    weight, threshold = text_manifest["rerankWeight"], text_manifest["gateThreshold"]
    if not (isinstance(weight, (int, float)) and 0 <= weight <= 10):
        raise ExportError(f"rerankWeight {weight!r} must be a number in 0..10")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold <= CLIP_SCORE_WEIGHT):
        raise ExportError(f"gateThreshold {threshold!r} must be a clipScore, 0..{CLIP_SCORE_WEIGHT}")
    t = model.cfg.text
    return {"dim": t.output_dim, "contextLength": t.context_length, "bos": clip_tokenizer.BOS_ID,
            "eot": clip_tokenizer.EOT_ID, "clipScoreWeight": CLIP_SCORE_WEIGHT, "rerankWeight": float(weight),
            "gateThreshold": float(threshold), "calibration": cal}


def pack_manifest(model: ClipCap, out_dir: str, pack_id: str, name: str, precision: str, provenance: dict,
                  description: str = "", version: str = "1.0.0", mean=CLIP_MEAN, std=CLIP_STD,
                  beams: int = 5, max_tokens: int = 67, text_manifest: Optional[dict] = None) -> dict:
    cfg = model.cfg
    text = text_section(model, text_manifest)
    files = {r: file_entry(out_dir, f"{r}.onnx") for r in ("vision", "mapper", "decoder")}
    files["tokenizer"] = file_entry(out_dir, "tokenizer.json")
    if text is not None:
        files["text"] = file_entry(out_dir, "text.onnx")
        files["textTokenizer"] = file_entry(out_dir, "text-tokenizer.json")
    return {
        "format": "clipcap-pack",
        "formatVersion": FORMAT_VERSION,
        "id": pack_id,
        "version": version,
        "name": name,
        "description": description,
        "provenance": provenance,
        "precision": precision,
        "preprocess": {
            "imageSize": cfg.vision.image_size, "resize": "shortest_edge", "interpolation": "bicubic",
            "crop": "center", "rescale": 1 / 255, "mean": list(mean), "std": list(std), "channelOrder": "RGB",
        },
        "embedding": {"dim": cfg.vision.output_dim, "l2Normalize": bool(cfg.normalize_prefix)},
        "mapper": {"type": cfg.mapper.type, "prefixLength": cfg.mapper.prefix_length,
                   "clipLength": cfg.mapper.clip_length if cfg.mapper.type == "transformer" else None},
        "decoder": {"nLayer": cfg.gpt2.n_layer, "nHead": cfg.gpt2.n_head, "nEmbd": cfg.gpt2.n_embd,
                    "headDim": cfg.gpt2.n_embd // cfg.gpt2.n_head, "vocabSize": cfg.gpt2.vocab_size,
                    "nPositions": cfg.gpt2.n_positions},
        "tokens": {"bos": EOS_ID, "eos": EOS_ID, "stop": [PERIOD_ID, EOS_ID]},
        "generation": {"strategy": "beam", "beams": beams, "maxTokens": max_tokens, "lengthNormalize": True},
        "files": files,
    } | ({"text": text} if text is not None else {})


def export_pack(model: ClipCap, out_dir: str, pack_id: str, name: str, precision: str = "fp32",
                provenance: Optional[dict] = None, text_manifest: Optional[dict] = None, **manifest_kw) -> dict:
    """Write a complete pack (graphs, tokenizer.json, pack.json; text.onnx and text-tokenizer.json with a text
    tower, whose rerankWeight, gateThreshold and calibration text_manifest gives) and return its manifest."""
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    text_section(model, text_manifest)  # refuse a missing or bad text_manifest before minutes of export
    os.makedirs(out_dir, exist_ok=True)
    paths = export_fp32_graphs(model, out_dir)
    for role, p in paths.items():
        if precision == "fp16":
            to_fp16_storage(p)
        elif precision == "int8":
            to_int8_dynamic(p)
            if role == "text":
                to_int8_gather_tables(p)
        elif precision in NBITS_PRECISIONS:
            from .lowbit import to_nbits  # lowbit imports this module's graph helpers

            to_nbits(p, *NBITS_PRECISIONS[precision])
            if role == "text":
                to_int8_gather_tables(p)
    build_tokenizer_json(os.path.join(out_dir, "tokenizer.json"))
    if model.text is not None:
        clip_tokenizer.build_text_tokenizer_json(os.path.join(out_dir, "text-tokenizer.json"))
    manifest = pack_manifest(model, out_dir, pack_id, name, precision, provenance or {}, text_manifest=text_manifest,
                             **manifest_kw)
    with open(os.path.join(out_dir, "pack.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def verify_pack(out_dir: str) -> dict:
    """Re-hash every file pack.json lists; raise ExportError naming the first that differs."""
    with open(os.path.join(out_dir, "pack.json")) as f:
        manifest = json.load(f)
    for role, entry in manifest["files"].items():
        actual = file_entry(out_dir, entry["path"])
        if actual["bytes"] != entry["bytes"] or actual["sha256"] != entry["sha256"]:
            raise ExportError(f"{role} file {entry['path']} does not match pack.json (size or SHA-256 differ)")
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a checkpoint written by model.save_checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--id", default=None)
    ap.add_argument("--name", default=None)
    ap.add_argument("--precision", default="fp32", choices=PRECISIONS)
    args = ap.parse_args()
    model = load_checkpoint(args.checkpoint)
    pack_id = args.id or os.path.basename(os.path.normpath(args.out))
    m = export_pack(model, args.out, pack_id, args.name or pack_id, args.precision,
                    {"builder": "model/export.py", "checkpoint": os.path.basename(args.checkpoint)})
    for role, e in m["files"].items():
        print(f"{role:10s} {e['bytes'] / 1e6:9.2f} MB  {e['path']}")


if __name__ == "__main__":
    main()
