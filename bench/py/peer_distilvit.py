"""
A random-weight *distilvit-style peer* for the benchmarks: the architecture of Mozilla's distilvit (the model
Firefox uses for PDF alt text), written as a transformers.js model folder that its own
`pipeline('image-to-text', ...)` loads.

    VisionEncoderDecoderModel
      encoder  ViT-B/16: 224 px, patch 16, width 768, 12 layers, 12 heads -> last_hidden_state (B, 197, 768)
      decoder  distilGPT-2: 6 layers, n_embd 768, 12 heads, vocab 50257, with cross-attention in every block
    about 182M parameters; speed does not depend on weight values, so seeded random weights time it faithfully.

    /usr/bin/python3 -m bench.py.peer_distilvit --out packs/peer-distilvit [--size full|tiny] [--precisions fp32,int8]
        [--cross-kv cached|recompute|both]

Folder written (what transformers.js 4.3.1 reads for model_type "vision-encoder-decoder"):
    config.json  generation_config.json  preprocessor_config.json  tokenizer.json  tokenizer_config.json
    onnx/encoder_model.onnx             pixel_values -> last_hidden_state
    onnx/decoder_model_merged.onnx      input_ids, encoder_hidden_states, past_key_values.{i}.key/value,
                                        use_cache_branch -> logits, present.{i}.key/value
    onnx/*_quantized.onnx               dtype 'q8' (model/export.py's to_int8_dynamic)
    onnx/*_fp16.onnx                    dtype 'fp16', only with --precisions ...,fp16 (fp16 *storage*, fp32 compute)

The past names: transformers.js normalises a vision-encoder-decoder config through its decoder's model_type; for
"gpt2" that gives plain `past_key_values.{i}.key/value` (no `.decoder.`/`.encoder.` split), and optimum exports a
GPT-2 decoder the same way. In Hugging Face's GPT-2 the cross-attention keys and values are not part of the past, so
optimum's distilvit decoder recomputes them from encoder_hidden_states at every step (`--cross-kv recompute`, the
faithful copy of what Firefox runs). The default, `cached`, is the fair peer: the first step computes the
cross-attention K/V once and carries them at the front of each layer's past along the sequence axis,
present.{i}.key = [cross K (197) | self K (t)], and later steps split them off again: same numbers, same I/O names,
no per-step recompute.
"""

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper
from torch.nn import functional as F

from model.export import _export, to_fp16_storage, to_int8_dynamic
from model.model import EOS_ID, Conv1D, GPT2Attention, GPT2Config, GPT2MLP
from model.tokenizer import build_tokenizer_json, tokenizer_config

PRECISIONS = ("fp32", "int8", "fp16")
SUFFIX = {"fp32": "", "int8": "_quantized", "fp16": "_fp16"}  # transformers.js: dtype fp32, q8, fp16


@dataclass
class PeerConfig:
    # encoder: ViT (HF ViTModel, no pooler)
    image_size: int = 224
    patch_size: int = 16
    enc_width: int = 768
    enc_layers: int = 12
    enc_heads: int = 12
    enc_mlp: int = 3072
    enc_eps: float = 1e-12
    # decoder: distilGPT-2 with cross-attention (HF GPT2LMHeadModel, add_cross_attention=True)
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768  # = enc_width, so there is no enc_to_dec_proj
    n_layer: int = 6
    n_head: int = 12
    eps: float = 1e-5

    @property
    def gpt2(self) -> GPT2Config:
        return GPT2Config(self.vocab_size, self.n_positions, self.n_embd, self.n_layer, self.n_head, self.eps)

    @property
    def n_tokens(self) -> int:  # encoder sequence: class token + patches
        return (self.image_size // self.patch_size) ** 2 + 1


SIZES = {
    "full": PeerConfig(),
    "tiny": PeerConfig(image_size=32, patch_size=8, enc_width=64, enc_layers=2, enc_heads=2, enc_mlp=128,
                       n_positions=64, n_embd=64, n_layer=2, n_head=2),
}

# -----------------------------------------------------------------------------
# Encoder: ViT (pre-LN blocks, exact GELU, final LayerNorm, no pooler)


class ViTAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)
        self.dense = nn.Linear(width, width)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = [f(x).view(B, T, self.heads, C // self.heads).transpose(1, 2) for f in (self.query, self.key, self.value)]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))  # (B, H, T, T)
        y = att.softmax(dim=-1) @ v  # (B, H, T, hd)
        return self.dense(y.transpose(1, 2).reshape(B, T, C))


class ViTLayer(nn.Module):
    def __init__(self, cfg: PeerConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(cfg.enc_width, eps=cfg.enc_eps)
        self.attention = ViTAttention(cfg.enc_width, cfg.enc_heads)
        self.layernorm_after = nn.LayerNorm(cfg.enc_width, eps=cfg.enc_eps)
        self.intermediate = nn.Linear(cfg.enc_width, cfg.enc_mlp)
        self.output = nn.Linear(cfg.enc_mlp, cfg.enc_width)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(F.gelu(self.intermediate(self.layernorm_after(x))))


class ViTEncoder(nn.Module):
    def __init__(self, cfg: PeerConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embeddings = nn.Conv2d(3, cfg.enc_width, cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.enc_width))
        self.position_embeddings = nn.Parameter(torch.zeros(1, cfg.n_tokens, cfg.enc_width))
        self.layer = nn.ModuleList([ViTLayer(cfg) for _ in range(cfg.enc_layers)])
        self.layernorm = nn.LayerNorm(cfg.enc_width, eps=cfg.enc_eps)

    def forward(self, pixel_values):
        B = pixel_values.shape[0]
        x = self.patch_embeddings(pixel_values).flatten(2).transpose(1, 2)  # (B, N, W)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1) + self.position_embeddings  # (B, N + 1, W)
        for layer in self.layer:
            x = layer(x)
        return self.layernorm(x)  # last_hidden_state (B, N + 1, W)


# -----------------------------------------------------------------------------
# Decoder: GPT-2 blocks (model.py's self-attention and MLP) plus HF GPT-2's cross-attention

KV = Tuple[torch.Tensor, torch.Tensor]  # key, value, each (B, H, S, hd)


class CrossAttention(nn.Module):
    """HF GPT-2's `crossattention`: queries from the caption (q_attn), keys and values from the image (c_attn)."""

    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.n_head = cfg.n_head
        self.q_attn = Conv1D(cfg.n_embd, cfg.n_embd)
        self.c_attn = Conv1D(cfg.n_embd, 2 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)

    def kv(self, enc) -> KV:
        B, S, C = enc.shape  # (B, S, E) image tokens
        k, v = self.c_attn(enc).split(C, dim=2)
        return tuple(t.view(B, S, self.n_head, C // self.n_head).transpose(1, 2) for t in (k, v))  # (B, H, S, hd)

    def forward(self, x, k, v):
        B, T, C = x.shape
        q = self.q_attn(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.n_head))  # (B, H, T, S), no mask
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class DecoderBlock(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = GPT2Attention(cfg)
        self.ln_cross_attn = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.crossattention = CrossAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x, allowed, past_k, past_v, cross_k, cross_v):
        a, k, v = self.attn(self.ln_1(x), allowed, past_k, past_v)
        x = x + a
        x = x + self.crossattention(self.ln_cross_attn(x), cross_k, cross_v)
        x = x + self.mlp(self.ln_2(x))
        return x, k, v


class Decoder(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([DecoderBlock(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        # zero bias: the 2-D head exports as Gemm(transB=1) reading `wte` in place (see model.GPT2LMHeadModel)
        self.register_buffer("lm_head_bias", torch.zeros(cfg.vocab_size), persistent=False)

    def cross_kv(self, enc) -> List[KV]:
        return [block.crossattention.kv(enc) for block in self.h]

    def forward(self, input_ids, cross: List[KV], past: Optional[List[KV]] = None):
        """input_ids (B, T); cross per layer (B, H, S, hd); past per layer (B, H, t, hd) or None.
        Returns logits (B, T, V) and the new self-attention past (B, H, t + T, hd) per layer."""
        B, T = input_ids.shape
        past_len = 0 if past is None else past[0][0].shape[2]
        positions = torch.arange(T, device=input_ids.device) + past_len  # (T,)
        x = self.wte(input_ids) + self.wpe(positions)  # (B, T, E)
        allowed = (torch.arange(past_len + T, device=x.device)[None, :] <= positions[:, None])[None, None]  # (1,1,T,S)
        presents = []
        for i, block in enumerate(self.h):
            pk, pv = (None, None) if past is None else past[i]
            x, k, v = block(x, allowed, pk, pv, *cross[i])
            presents.append((k, v))
        h = self.ln_f(x).reshape(B * T, -1)  # (B*T, E)
        logits = F.linear(h, self.wte.weight, self.lm_head_bias).view(B, T, -1)  # LM head tied to wte
        return logits, presents


class DistilViTPeer(nn.Module):
    def __init__(self, cfg: PeerConfig):
        super().__init__()
        assert cfg.enc_width == cfg.n_embd, "encoder and decoder widths must match (no enc_to_dec_proj)"
        self.cfg = cfg
        self.encoder = ViTEncoder(cfg)
        self.decoder = Decoder(cfg.gpt2)

    @torch.no_grad()
    def greedy(self, pixel_values, max_new_tokens: int = 20, start: int = EOS_ID, eos: int = EOS_ID) -> List[int]:
        """Greedy decode of one image, as transformers.js generate() does it: [start, t1, ..., tn] (eos included)."""
        cross = self.decoder.cross_kv(self.encoder(pixel_values))
        ids, past = [start], None
        for _ in range(max_new_tokens):
            logits, past = self.decoder(torch.tensor([[ids[-1]]]), cross, past)
            ids.append(int(logits[0, -1].argmax()))
            if ids[-1] == eos:
                break
        return ids


def random_peer(cfg: PeerConfig, seed: int = 0) -> DistilViTPeer:
    """Seeded random weights, drawn wide (as random_pack.random_model) so greedy choices have clear margins and
    change from step to step."""
    torch.manual_seed(seed)
    model = DistilViTPeer(cfg).eval()
    with torch.no_grad():
        enc = model.encoder
        enc.cls_token.normal_(0.0, 1.0)
        enc.position_embeddings.normal_(0.0, 1.0)
        for m in enc.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0 / m.in_features**0.5)
                m.bias.normal_(0.0, 0.1)
        E = cfg.n_embd
        model.decoder.wte.weight.normal_(0.0, (32 / E) ** 0.5)
        model.decoder.wpe.weight.normal_(0.0, (32 / E) ** 0.5)
        for p in model.decoder.h.parameters():
            if p.dim() == 2:  # Conv1D weights are [in, out]
                p.normal_(0.0, 1.7 / p.shape[0] ** 0.5)
    return model


# -----------------------------------------------------------------------------
# ONNX graphs with optimum's names


class EncoderGraph(nn.Module):
    def __init__(self, model: DistilViTPeer):
        super().__init__()
        self.encoder = model.encoder

    def forward(self, pixel_values):
        return self.encoder(pixel_values)


class DecoderGraph(nn.Module):
    """One branch of the merged decoder. with_past=False: (input_ids, encoder_hidden_states); with_past=True: also
    the flat past. cached=True keeps the cross-attention K/V at the front of each layer's past (see the docstring)."""

    def __init__(self, model: DistilViTPeer, with_past: bool, cached: bool):
        super().__init__()
        self.decoder, self.with_past, self.cached = model.decoder, with_past, cached

    def forward(self, input_ids, encoder_hidden_states, *past_flat):
        L = self.decoder.cfg.n_layer
        S = encoder_hidden_states.shape[1]  # image tokens
        pairs = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(L)] if self.with_past else None
        if self.cached and pairs is not None:
            cross = [(k[:, :, :S], v[:, :, :S]) for k, v in pairs]  # computed at the first step
            past = [(k[:, :, S:], v[:, :, S:]) for k, v in pairs]
        else:
            cross = self.decoder.cross_kv(encoder_hidden_states)
            past = pairs
        logits, presents = self.decoder(input_ids, cross, past)
        if self.cached:
            presents = [(torch.cat([ck, k], dim=2), torch.cat([cv, v], dim=2)) for (ck, cv), (k, v) in zip(cross, presents)]
        return (logits, *[t for kv in presents for t in kv])


def _init_key(t: onnx.TensorProto):
    data = t.raw_data if t.HasField("raw_data") else t.SerializeToString()
    return t.data_type, tuple(t.dims), hashlib.sha1(data).hexdigest()


def merge_decoders(no_past: onnx.ModelProto, with_past: onnx.ModelProto) -> onnx.ModelProto:
    """optimum's decoder_model_merged: one graph whose `use_cache_branch` input picks the with-past branch (then)
    or the first-step branch (else). Initialisers are hoisted to the outer graph and shared by content; every value
    computed inside a branch is renamed with the branch's prefix so nothing shadows an outer name."""
    inits, by_key = {}, {}

    def branch(m: onnx.ModelProto, tag: str) -> onnx.GraphProto:
        g = m.graph
        rename = {i.name: i.name for i in g.input}
        for t in g.initializer:
            key = _init_key(t)
            if key not in by_key:
                name = t.name if t.name not in inits else f"{tag}/{t.name}"
                t2 = copy.deepcopy(t)
                t2.name = name
                inits[name], by_key[key] = t2, name
            rename[t.name] = by_key[key]
        nodes = []
        for n in g.node:
            for j, o in enumerate(n.output):
                if o:
                    rename[o] = f"{tag}/{o}"
            n2 = copy.deepcopy(n)
            n2.name = f"{tag}/{n.name or n.output[0]}"
            n2.input[:] = [rename[i] if i else i for i in n.input]
            n2.output[:] = [rename[o] if o else o for o in n.output]
            nodes.append(n2)
        outs = []
        for o in g.output:
            name = rename[o.name]
            if name == o.name:  # an output that is an outer name itself: give the branch its own copy
                name = f"{tag}/{o.name}"
                nodes.append(helper.make_node("Identity", [o.name], [name], name=f"{tag}/{o.name}_identity"))
            vi = copy.deepcopy(o)
            vi.name = name
            outs.append(vi)
        return helper.make_graph(nodes, f"{tag}_branch", [], outs)

    then_g, else_g = branch(with_past, "with_past"), branch(no_past, "no_past")
    assert [o.name for o in with_past.graph.output] == [o.name for o in no_past.graph.output], "branch outputs differ"
    cond = helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1])
    out_names = [o.name for o in with_past.graph.output]
    node = helper.make_node("If", ["use_cache_branch"], out_names, name="optimum::if",
                            then_branch=then_g, else_branch=else_g)
    graph = helper.make_graph([node], "decoder_model_merged", [*with_past.graph.input, cond],
                              list(with_past.graph.output), list(inits.values()))
    merged = helper.make_model(graph, opset_imports=list(with_past.opset_import), producer_name="model.peer_distilvit")
    merged.ir_version = with_past.ir_version
    onnx.checker.check_model(merged)
    return merged


def export_onnx(model: DistilViTPeer, onnx_dir: str, cached: bool):
    """Write onnx/encoder_model.onnx and onnx/decoder_model_merged.onnx in fp32."""
    cfg = model.cfg
    os.makedirs(onnx_dir, exist_ok=True)
    L, H, hd, S = cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head, cfg.n_tokens
    with torch.no_grad():
        _export(EncoderGraph(model), (torch.randn(2, 3, cfg.image_size, cfg.image_size),),
                os.path.join(onnx_dir, "encoder_model.onnx"), ["pixel_values"], ["last_hidden_state"],
                {"pixel_values": {0: "batch_size"}, "last_hidden_state": {0: "batch_size"}})
        past_names = [f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
        present_names = [f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
        outputs = ["logits", *present_names]
        axes = {"input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
                "encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"},
                "logits": {0: "batch_size", 1: "decoder_sequence_length"}}
        axes.update({n: {0: "batch_size", 2: "past_decoder_sequence_length"} for n in past_names})
        axes.update({n: {0: "batch_size", 2: "present_sequence_length"} for n in present_names})
        # trace with every dynamic dimension distinct and non-zero, so none is baked in as a constant
        B, T, t = 2, 2, 3
        ids, enc = torch.randint(0, 100, (B, T)), torch.randn(B, S, cfg.n_embd)
        past = [torch.randn(B, H, t + (S if cached else 0), hd) for _ in range(2 * L)]
        paths = [os.path.join(onnx_dir, f"_{n}.onnx") for n in ("no_past", "with_past")]
        _export(DecoderGraph(model, False, cached), (ids, enc), paths[0], ["input_ids", "encoder_hidden_states"],
                outputs, axes)
        _export(DecoderGraph(model, True, cached), (ids, enc, *past), paths[1],
                ["input_ids", "encoder_hidden_states", *past_names], outputs, axes)
    merged = merge_decoders(onnx.load(paths[0]), onnx.load(paths[1]))
    onnx.save(merged, os.path.join(onnx_dir, "decoder_model_merged.onnx"))
    for p in paths:
        os.remove(p)


# -----------------------------------------------------------------------------
# The model folder


def hf_config(cfg: PeerConfig) -> dict:
    ids = {"bos_token_id": EOS_ID, "eos_token_id": EOS_ID, "pad_token_id": EOS_ID, "decoder_start_token_id": EOS_ID}
    return {
        "model_type": "vision-encoder-decoder",
        "architectures": ["VisionEncoderDecoderModel"],
        "is_encoder_decoder": True,
        "tie_word_embeddings": False,
        **ids,
        "encoder": {
            "model_type": "vit", "architectures": ["ViTModel"], "hidden_size": cfg.enc_width,
            "num_hidden_layers": cfg.enc_layers, "num_attention_heads": cfg.enc_heads,
            "intermediate_size": cfg.enc_mlp, "hidden_act": "gelu", "layer_norm_eps": cfg.enc_eps,
            "image_size": cfg.image_size, "patch_size": cfg.patch_size, "num_channels": 3, "qkv_bias": True,
        },
        "decoder": {
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": cfg.vocab_size,
            "n_positions": cfg.n_positions, "n_ctx": cfg.n_positions, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
            "n_head": cfg.n_head, "n_inner": None, "activation_function": "gelu_new",
            "layer_norm_epsilon": cfg.eps, "add_cross_attention": True, "is_decoder": True, "use_cache": True,
            **ids,
        },
    }


def preprocessor_config(cfg: PeerConfig) -> dict:
    return {
        "image_processor_type": "ViTImageProcessor", "feature_extractor_type": "ViTFeatureExtractor",
        "do_resize": True, "size": {"height": cfg.image_size, "width": cfg.image_size}, "resample": 2,  # bilinear
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    }


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def write_folder(model: DistilViTPeer, out: str, precisions=("fp32", "int8"), cached: bool = True,
                 fp32_from: Optional[str] = None) -> dict:
    """Write the whole transformers.js folder; returns {file: bytes}. fp32_from: another folder whose
    onnx/encoder_model*.onnx to hard-link instead of exporting the encoder again."""
    cfg = model.cfg
    onnx_dir = os.path.join(out, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    for f in os.listdir(onnx_dir):  # no stale graphs from an earlier build (another seed, size or precision)
        if f.endswith(".onnx"):
            os.remove(os.path.join(onnx_dir, f))
    export_onnx(model, onnx_dir, cached)
    for role in ("encoder_model", "decoder_model_merged"):
        fp32 = os.path.join(onnx_dir, f"{role}.onnx")
        for p in precisions:
            dst = os.path.join(onnx_dir, f"{role}{SUFFIX[p]}.onnx")
            if fp32_from and role == "encoder_model":  # the same encoder: share the first folder's files
                _link(os.path.join(fp32_from, "onnx", os.path.basename(dst)), dst)
            elif p != "fp32":
                shutil.copyfile(fp32, dst)
                (to_int8_dynamic if p == "int8" else to_fp16_storage)(dst)
        if "fp32" not in precisions:
            os.remove(fp32)
    _write_json(os.path.join(out, "config.json"), hf_config(cfg))
    _write_json(os.path.join(out, "generation_config.json"),
                {"bos_token_id": EOS_ID, "eos_token_id": EOS_ID, "pad_token_id": EOS_ID,
                 "decoder_start_token_id": EOS_ID})
    _write_json(os.path.join(out, "preprocessor_config.json"), preprocessor_config(cfg))
    build_tokenizer_json(os.path.join(out, "tokenizer.json"))
    _write_json(os.path.join(out, "tokenizer_config.json"), tokenizer_config())
    files = {}
    for root, _, names in os.walk(out):
        for n in sorted(names):
            p = os.path.join(root, n)
            files[os.path.relpath(p, out)] = os.path.getsize(p)
    return files


def _link(src, dst):
    if os.path.exists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def log(msg: str):
    print(f"[peer {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(out: str, size: str = "full", precisions=("fp32", "int8"), cross_kv: str = "cached", seed: int = 0) -> dict:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.time()
    cfg = SIZES[size]
    model = random_peer(cfg, seed)
    params = sum(p.numel() for p in model.parameters())
    log(f"{size}: {params / 1e6:.1f}M parameters (encoder {sum(p.numel() for p in model.encoder.parameters()) / 1e6:.1f}M)")
    report = {"size": size, "seed": seed, "parameters": params, "config": asdict(cfg), "variants": {}}
    variants = ["cached", "recompute"] if cross_kv == "both" else [cross_kv]
    first = None
    for v in variants:
        d = out if v == variants[0] else f"{out.rstrip('/')}-{v}"
        t = time.time()
        files = write_folder(model, d, precisions, cached=(v == "cached"), fp32_from=first)
        first = first or d
        report["variants"][v] = {"dir": d, "files": files, "seconds": round(time.time() - t, 1)}
        log(f"{v} -> {d}: " + ", ".join(f"{k} {b / 1e6:.1f} MB" for k, b in files.items() if k.endswith(".onnx")))
    report["seconds"] = round(time.time() - t0, 1)
    _write_json(os.path.join(out, "report.json"), report)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="packs/peer-distilvit")
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--precisions", default="fp32,int8", help=f"comma-separated from {', '.join(PRECISIONS)}")
    ap.add_argument("--cross-kv", choices=("cached", "recompute", "both"), default="cached",
                    help="cached (default, fair): cross-attention K/V computed once; recompute: as optimum's export "
                         "of distilvit; both: the second goes to <out>-recompute")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    precisions = [p for p in a.precisions.split(",") if p]
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad:
        ap.error(f"unknown precision {bad[0]!r}; choose from {', '.join(PRECISIONS)}")
    build(a.out, a.size, precisions, a.cross_kv, a.seed)


if __name__ == "__main__":
    main()
