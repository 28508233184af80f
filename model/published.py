"""
Synthetic files in the EXACT containers and key names of the published ClipCap and CLIP weights, so the on-device
readers (src/converter/readers/) and the install tests run offline, without the real multi-hundred-MB downloads.

    ClipCap's coco_weights.pt            write_torch_zip         torch.save of an OrderedDict: a zip checkpoint whose
                                                                 pickle uses OrderedDict, _rebuild_tensor_v2 and
                                                                 FloatStorage (ByteStorage for GPT-2's mask buffers)
    OpenAI's ViT-B-32.pt / RN50x4.pt     write_torchscript_clip  torch.jit.save of a scripted module tree; mostly fp16
    timm's open_clip_model.safetensors   write_safetensors       fp32, OpenAI's names

    /usr/bin/python3 -m model.published --from-checkpoint packs/.build/toy/model.pt --out packs/published/toy
    /usr/bin/python3 -m model.published --random small --out .tmp/published/small
    /usr/bin/python3 -m model.published --random full-vit-b32-mlp --out packs/published/full   # real shapes, ~1 GB

Each output folder holds clip.pt, clip.safetensors, clipcap.pt and files.json (bytes and SHA-256 of each file).
The CLIP files carry the model's own text tower when it has one (ClipCapConfig.text), else a random stand-in.
"""

import argparse
import hashlib
import json
import os
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch
import torch.nn as nn

from .model import ClipCap, ClipCapConfig, MapperConfig, VisionConfig
from .random_pack import SIZES
from .safetensors_io import save_file

Tensor = torch.Tensor


# -----------------------------------------------------------------------------
# Writers, one per published container


def write_torch_zip(state: Dict[str, Tensor], path: str) -> None:
    """ClipCap's container: torch.save of an OrderedDict of tensors (zip format, the default since torch 1.6).
    Tensors that share storage (gpt.lm_head.weight and wte) are written once, as torch does for the real file.
    A state_dict()'s `_metadata` (per-module versions) is kept: it pickles as a BUILD on the OrderedDict, as in
    the published file."""
    out = OrderedDict(state)
    if getattr(state, "_metadata", None) is not None:
        out._metadata = state._metadata
    torch.save(out, path)


class _Holder(nn.Module):
    """An empty scriptable module: it only carries attributes, so the archive's module tree is the key tree."""

    def forward(self, x: Tensor) -> Tensor:
        return x


def write_torchscript(state: Dict[str, Tensor], path: str, plain: Optional[Dict[str, Tensor]] = None) -> None:
    """Save tensors as a TorchScript archive whose state_dict() returns exactly the names of `state`.

    Floating tensors with a dimension become parameters, the rest buffers (as OpenAI's archives hold
    `input_resolution` etc. as 0-d tensors). `plain` adds tensor attributes that are neither (OpenAI's text blocks
    keep `attn_mask` that way): the archive stores them, state_dict() does not list them, nor must a reader."""
    root = _Holder()

    def module_of(key: str):
        *mods, leaf = key.split(".")
        m = root
        for name in mods:
            if name not in m._modules:
                m.add_module(name, _Holder())
            m = m._modules[name]
        return m, leaf

    for k, v in state.items():
        m, leaf = module_of(k)
        if v.is_floating_point() and v.dim() > 0:
            m.register_parameter(leaf, nn.Parameter(v, requires_grad=False))
        else:
            m.register_buffer(leaf, v)
    for k, v in (plain or {}).items():
        m, leaf = module_of(k)
        setattr(m, leaf, v)  # a plain attribute: scripted as a Tensor attribute, not a parameter or buffer
    torch.jit.save(torch.jit.script(root), path)


def write_safetensors(state: Dict[str, Tensor], path: str) -> None:
    """timm's open_clip_model.safetensors: fp32, OpenAI's names. model/safetensors_io.py writes the bytes.
    (timm's file widens OpenAI's fp16 weights, so write_published passes the values the TorchScript file holds.)"""
    save_file({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, path, metadata={"format": "pt"})


# OpenAI's clip/model.py convert_weights() turns Conv/Linear/MultiheadAttention weights and the `proj` and
# `text_projection` matrices into fp16; embeddings, LayerNorms and logit_scale stay fp32. The archives are
# therefore mixed: mostly fp16 bytes, with fp32 tensors in between.
_OPENAI_FP16 = re.compile(r"(conv\d?\.weight|downsample\.0\.weight|in_proj_weight|in_proj_bias|out_proj\.(weight|bias)"
                          r"|c_fc\.(weight|bias)|c_proj\.(weight|bias)|[kqv]_proj\.(weight|bias)|(^|\.)proj"
                          r"|text_projection)$")


def openai_dtypes(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Cast as OpenAI's convert_weights() does (see _OPENAI_FP16); non-float tensors are left as they are."""
    out = OrderedDict()
    for k, v in state.items():
        if v.is_floating_point():
            v = v.half() if _OPENAI_FP16.search(k) else v.float()
        out[k] = v
    return out


def fake_text_tower(embed_dim: int, width: int = 32, layers: int = 1, context: int = 77, vocab: int = 64,
                    seed: int = 0) -> Dict[str, Tensor]:
    """A random text tower under OpenAI CLIP's keys (small widths), for a model without its own: the files always
    carry one, as OpenAI's do, and readers of the image tower must skip it."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.02  # noqa: E731
    t = OrderedDict()
    t["positional_embedding"] = r(context, width)
    t["text_projection"] = r(width, embed_dim)
    t["logit_scale"] = torch.tensor(4.6052)
    t["token_embedding.weight"] = r(vocab, width)
    t["ln_final.weight"] = torch.ones(width)
    t["ln_final.bias"] = torch.zeros(width)
    for i in range(layers):
        p = f"transformer.resblocks.{i}"
        t[f"{p}.attn.in_proj_weight"] = r(3 * width, width)
        t[f"{p}.attn.in_proj_bias"] = r(3 * width)
        t[f"{p}.attn.out_proj.weight"] = r(width, width)
        t[f"{p}.attn.out_proj.bias"] = r(width)
        t[f"{p}.ln_1.weight"] = torch.ones(width)
        t[f"{p}.ln_1.bias"] = torch.zeros(width)
        t[f"{p}.mlp.c_fc.weight"] = r(4 * width, width)
        t[f"{p}.mlp.c_fc.bias"] = r(4 * width)
        t[f"{p}.mlp.c_proj.weight"] = r(width, 4 * width)
        t[f"{p}.mlp.c_proj.bias"] = r(width)
        t[f"{p}.ln_2.weight"] = torch.ones(width)
        t[f"{p}.ln_2.bias"] = torch.zeros(width)
    return t


def write_torchscript_clip(visual: Dict[str, Tensor], path: str, image_size: int, embed_dim: int,
                           fp16: bool = True, text_layers: int = 1, text_width: int = 32,
                           text_vocab: int = 64, text: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
    """An archive like OpenAI's ViT-B-32.pt: `visual.*` (fp16 as OpenAI's where fp16=True), a text tower, the text
    blocks' `attn_mask` as plain attributes, and input_resolution/context_length/vocab_size. The text tower is
    `text` (a model's own, under OpenAI's top-level names) or else a random one of the text_* sizes (small by
    default; OpenAI's sizes for the full-size files). Returns the state written (what
    torch.jit.load(path).state_dict() gives back)."""
    if text is None:
        text = fake_text_tower(embed_dim, width=text_width, layers=text_layers, vocab=text_vocab)
    text_layers = len({k.split(".")[2] for k in text if k.startswith("transformer.resblocks.")})
    state = OrderedDict((k, v) for k, v in visual.items() if k.startswith("visual."))
    assert state, "no visual.* tensors to write"
    state.update(text)
    state = openai_dtypes(state) if fp16 else OrderedDict((k, v.float() if v.is_floating_point() else v)
                                                         for k, v in state.items())
    context = text["positional_embedding"].shape[0]
    state["input_resolution"] = torch.tensor(image_size)
    state["context_length"] = torch.tensor(context)
    state["vocab_size"] = torch.tensor(text["token_embedding.weight"].shape[0])
    mask = torch.full((context, context), float("-inf")).triu_(1)
    plain = {f"transformer.resblocks.{i}.attn_mask": mask for i in range(text_layers)}
    write_torchscript(state, path, plain=plain)
    return state


def clipcap_state(model_state: Dict[str, Tensor], n_positions: int) -> Dict[str, Tensor]:
    """ClipCap's coco_weights.pt from our model's state dict: clip_project.* and gpt.*, plus what transformers'
    2021 GPT2LMHeadModel saved and our model does not hold: each block's causal mask `attn.bias` (uint8
    [1, 1, n_pos, n_pos]), `attn.masked_bias` (-1e4) and `gpt.lm_head.weight`, the same tensor as wte."""
    out = OrderedDict()
    mask = torch.tril(torch.ones(n_positions, n_positions, dtype=torch.uint8)).view(1, 1, n_positions, n_positions)
    for k, v in model_state.items():
        if not k.startswith(("clip_project.", "gpt.")):
            continue
        m = re.match(r"gpt\.transformer\.h\.(\d+)\.ln_1\.weight$", k)
        if m:
            out[f"gpt.transformer.h.{m.group(1)}.attn.bias"] = mask
            out[f"gpt.transformer.h.{m.group(1)}.attn.masked_bias"] = torch.tensor(-1e4)
        out[k] = v
    assert "gpt.transformer.wte.weight" in out, "the checkpoint has no gpt.transformer.wte.weight"
    out["gpt.lm_head.weight"] = out["gpt.transformer.wte.weight"]  # tied: one storage, two names
    meta = getattr(model_state, "_metadata", None)
    if meta is not None:  # as ClipCaptionModel.state_dict() has: {"": {"version": 1}, "gpt": {...}, ...}
        out._metadata = OrderedDict((k, v) for k, v in meta.items() if k == "" or k.startswith(("gpt", "clip_project")))
        out._metadata["gpt.lm_head"] = {"version": 1}
    return out


# -----------------------------------------------------------------------------
# Whole sets of files


RANDOM = {
    "small": SIZES["small"],  # model/random_pack.py's small configuration, its tiny text tower included
    "full-vit-b32-mlp": ClipCapConfig(),  # the COCO MLP model: ViT-B/32 + prefix-10 MLP + GPT-2 small
    "full-rn50x4-transformer": ClipCapConfig(  # the COCO transformer-mapper model on RN50x4
        vision=VisionConfig(image_size=288, width=80, heads=40, output_dim=640, arch="resnet"),
        mapper=MapperConfig(type="transformer", prefix_length=40, clip_length=40, num_layers=8, num_heads=8),
    ),
}
# OpenAI's text towers (clip/model.py build_model: transformer width, layers, vocabulary), for the full-size files:
# the readers fetch only the vision tensors, and the text tower is what a range read skips (about 40% of ViT-B/32).
FULL_TEXT = {"full-vit-b32-mlp": dict(text_width=512, text_layers=12, text_vocab=49408),
             "full-rn50x4-transformer": dict(text_width=640, text_layers=12, text_vocab=49408)}


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_published(cfg: ClipCapConfig, state: Dict[str, Tensor], out: str, text: Optional[dict] = None) -> dict:
    """clip.pt, clip.safetensors, clipcap.pt and files.json for one model's weights. A model with a text tower
    (`text.*` keys) has it written as OpenAI's; otherwise a random one stands in (`text`: its sizes,
    write_torchscript_clip's text_* arguments; a small one by default)."""
    os.makedirs(out, exist_ok=True)
    visual = OrderedDict((k, v) for k, v in state.items() if k.startswith("visual."))
    own_text = OrderedDict((k[len("text."):], v) for k, v in state.items() if k.startswith("text."))
    written = write_torchscript_clip(visual, os.path.join(out, "clip.pt"), cfg.vision.image_size,
                                     cfg.vision.output_dim, text=own_text or None, **({} if own_text else text or {}))
    # open_clip's file has no input_resolution/context_length/vocab_size (build_model's extras), only weights.
    write_safetensors({k: v for k, v in written.items()
                       if k not in ("input_resolution", "context_length", "vocab_size")},
                      os.path.join(out, "clip.safetensors"))
    write_torch_zip(clipcap_state(state, cfg.gpt2.n_positions), os.path.join(out, "clipcap.pt"))
    files = {}
    for name, fmt in (("clip.pt", "torchscript"), ("clip.safetensors", "safetensors"), ("clipcap.pt", "torch-zip")):
        p = os.path.join(out, name)
        files[name] = {"format": fmt, "bytes": os.path.getsize(p), "sha256": _sha256(p)}
    index = {"format": "clipcap-published-synthetic", "config": cfg.to_dict(), "files": files}
    with open(os.path.join(out, "files.json"), "w") as f:
        json.dump(index, f, indent=2)
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-checkpoint", help="a checkpoint written by model.save_checkpoint (config + state_dict)")
    src.add_argument("--random", choices=sorted(RANDOM), help="random weights of these shapes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.from_checkpoint:
        blob = torch.load(args.from_checkpoint, map_location="cpu")
        assert isinstance(blob, dict) and "config" in blob and "state_dict" in blob, \
            f"{args.from_checkpoint} is not a checkpoint of model.save_checkpoint (needs 'config' and 'state_dict')"
        cfg, state = ClipCapConfig.from_dict(blob["config"]), blob["state_dict"]
    else:
        cfg = RANDOM[args.random]
        torch.manual_seed(args.seed)
        state = ClipCap(cfg).state_dict()
    index = write_published(cfg, state, args.out, FULL_TEXT.get(args.random or ""))
    for name, f in index["files"].items():
        print(f"{os.path.join(args.out, name)}  {f['bytes']} bytes  sha256 {f['sha256']}")


if __name__ == "__main__":
    main()
