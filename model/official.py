"""
Readers of the officially published checkpoints: OpenAI CLIP archives, Hugging Face CLIP and GPT-2 files, and
ClipCap's own checkpoints. Each is read into model.py's parameter names, every key and shape checked against the
model it fills (model.check_state_dict), so a file of the wrong kind or size is refused with a list of what differs.

    model = build_official("ViT-B-32.pt", "coco_weights.pt")   # CLIP tower + ClipCap mapper + GPT-2, checked
    model = build_official("ViT-B-32.pt", "coco_weights.pt", text=True)   # ... and CLIP's text tower

The model itself is model.py; this module only maps the published files onto it.
"""

import json
import os
import zipfile
from typing import Optional, Tuple

import torch

from .model import (CheckpointError, ClipCap, ClipCapConfig, GPT2Config, MapperConfig, TextConfig, VisionConfig,
                    check_state_dict)
from .safetensors_io import load_file as load_safetensors

# Where each file is published, and how to fetch it: docs/official-weights.md. What each holds:
#   OpenAI CLIP  ViT-B-32.pt, RN50x4.pt    TorchScript archives; state_dict() keys `visual.*`, the text tower at the
#                                          top level (token_embedding, positional_embedding, transformer.resblocks.N,
#                                          ln_final, text_projection [width, out], logit_scale: kept under `text.`
#                                          when asked for) and `input_resolution`/`context_length`/`vocab_size`
#   HF CLIP      model.safetensors or      `vision_model.*` + `visual_projection.weight` (a Linear, [out, in]);
#                pytorch_model.bin         `text_model.*` + `text_projection.weight` (a Linear too) + `logit_scale`;
#                                          q/k/v are separate Linears where OpenAI has one in_proj
#   HF GPT-2     model.safetensors or      `[transformer.]wte/wpe/h.N/ln_f` (+ `lm_head.weight`, tied to wte);
#                pytorch_model.bin         Conv1D weights are [in, out], as ours; `h.N.attn.bias`/`masked_bias`
#                                          are causal-mask buffers, not weights, and are skipped
#   ClipCap      coco_weights.pt,          ClipCaptionModel.state_dict(): `clip_project.*` (MLP: prefix 10, from
#                conceptual_weights.pt     512-d ViT-B/32) and `gpt.*`, the GPT-2 ClipCap fine-tuned
#                transformer COCO .pt      `clip_project.*` (TransformerMapper: prefix 40, clip length 40, 8 layers,
#                                          from 640-d RN50x4) and `gpt.*`, plain GPT-2 (frozen while training)
#
# L2 normalisation: ClipCap's notebooks feed the MLP checkpoints the raw `encode_image` output
# (clip_prefix_captioning_inference.ipynb, and predict.py), but divide by its L2 norm before the transformer
# mapper (transformer_inference.ipynb: `prefix = prefix / prefix.norm(2, -1).item()`). train.py's
# `--normalize_prefix` is off by default. So normalize_prefix is False for an MLP checkpoint, True for a
# transformer one, and the pack's `embedding.l2Normalize` records it.

# Top-level keys of an OpenAI CLIP archive that are not part of the image tower.
_OPENAI_NON_VISUAL = ("transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection",
                      "logit_scale", "input_resolution", "context_length", "vocab_size")


def read_state_dict(path: str) -> dict:
    """Any of the official file kinds as a flat {name: tensor}: safetensors (our reader, no dependency), an OpenAI
    TorchScript archive, or a pickled state dict (pytorch_model.bin, ClipCap's .pt)."""
    if os.path.isdir(path):  # a Hugging Face model directory
        for name in ("model.safetensors", "pytorch_model.bin"):
            if os.path.isfile(os.path.join(path, name)):
                return read_state_dict(os.path.join(path, name))
        raise CheckpointError(f"{path} holds neither model.safetensors nor pytorch_model.bin")
    if not os.path.isfile(path):
        raise CheckpointError(f"weights file {path} does not exist")
    if path.endswith(".safetensors"):
        return load_safetensors(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            is_jit = any(n.endswith("constants.pkl") for n in z.namelist())  # only TorchScript archives have one
        if is_jit:
            return dict(torch.jit.load(path, map_location="cpu").state_dict())
    try:
        # weights_only: a file fetched from Google Drive or the Hub may not run code while it unpickles
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged file
        raise CheckpointError(f"{path} is corrupt, not a torch file, or holds more than tensors "
                              f"({type(e).__name__}: {str(e)[:300]})") from e
    if isinstance(sd, torch.jit.ScriptModule):  # torch.load hands TorchScript archives over to torch.jit.load
        sd = dict(sd.state_dict())
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors")
    return sd


def _float32(sd: dict) -> dict:
    """Official files store fp16 (OpenAI) or fp32; compute is fp32. Integer buffers stay as they are."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


def openai_vision_config(visual: dict) -> VisionConfig:
    """Infer the image tower's shape from `visual.*` keys, as OpenAI's build_model does."""
    if "visual.proj" in visual:
        width, _, patch, _ = visual["visual.conv1.weight"].shape
        grid = round((visual["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        layers = len({k.split(".")[3] for k in visual if k.startswith("visual.transformer.resblocks.")})
        return VisionConfig(image_size=patch * grid, patch_size=patch, width=width, layers=layers,
                            heads=width // 64, output_dim=visual["visual.proj"].shape[1], arch="vit")
    if "visual.attnpool.positional_embedding" in visual:
        stages = tuple(len({k.split(".")[2] for k in visual if k.startswith(f"visual.layer{b}.")}) for b in (1, 2, 3, 4))
        width = visual["visual.layer1.0.conv1.weight"].shape[0]
        grid = round((visual["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        return VisionConfig(image_size=grid * 32, width=width, heads=width * 32 // 64,
                            output_dim=visual["visual.attnpool.c_proj.weight"].shape[0], arch="resnet",
                            resnet_layers=stages)
    raise CheckpointError("not a CLIP image tower: found neither visual.proj (ViT) nor "
                          "visual.attnpool.positional_embedding (ResNet)")


def openai_clip_visual(sd: dict, what: str = "OpenAI CLIP checkpoint") -> dict:
    """Keep the image tower's `visual.*` keys of an OpenAI CLIP state dict; anything neither visual nor a known
    text-tower key is reported, so a file of some other kind is not half-loaded in silence."""
    visual = {k: v for k, v in sd.items() if k.startswith("visual.")}
    unknown = sorted(k for k in sd if not k.startswith("visual.") and not k.startswith(_OPENAI_NON_VISUAL))
    if not visual or unknown:
        raise CheckpointError(f"{what} is not an OpenAI CLIP state dict: "
                              + (f"unexpected keys ({len(unknown)}): {', '.join(unknown[:12])}" if unknown
                                 else "it has no visual.* keys"))
    return _float32(visual)


def _hf_tower(sd: dict, hf: str, ours: str, renames: dict, out: dict, what: str):
    """Rename one Hugging Face CLIP tower (keys under `hf`, e.g. "vision_model.") into OpenAI's names under `ours`
    (e.g. "visual."), adding to `out`: `renames` for the embeddings and final norms, the encoder layers as OpenAI's
    resblocks with q, k, v packed into one in_proj. The `position_ids` buffer is skipped; unknown keys are kept under
    their HF name so that check_state_dict names them as unexpected."""
    layer_renames = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                     "self_attn.out_proj": "attn.out_proj"}
    qkv: dict = {}
    for k, v in sd.items():
        if not k.startswith(hf) or k == hf + "embeddings.position_ids":
            continue
        name = k[len(hf):]
        if name in renames:
            out[ours + renames[name]] = v
            continue
        parts = name.split(".")  # encoder.layers.N.<module...>.<weight|bias>
        if name.startswith("encoder.layers.") and len(parts) >= 5:
            n, module, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((n, kind), {})[module[-6]] = v
                continue
            if module in layer_renames:
                out[f"{ours}transformer.resblocks.{n}.{layer_renames[module]}.{kind}"] = v
                continue
        out[ours + name] = v  # unknown: reported as unexpected by check_state_dict
    for (n, kind), parts in sorted(qkv.items()):
        missing = [p for p in "qkv" if p not in parts]
        if missing:
            raise CheckpointError(f"{what}: {hf}layer {n} lacks self_attn.{missing[0]}_proj.{kind}")
        # OpenAI's nn.MultiheadAttention packs q, k, v row-wise into one in_proj
        out[f"{ours}transformer.resblocks.{n}.attn.in_proj_{kind}"] = torch.cat([parts[p] for p in "qkv"], dim=0)


def hf_clip_visual(sd: dict, what: str = "HF CLIP checkpoint") -> dict:
    """Rename a Hugging Face CLIPModel / CLIPVisionModelWithProjection state dict to OpenAI's `visual.*` names.
    Text-tower keys are ignored (hf_clip_text reads them)."""
    if "visual_projection.weight" not in sd:
        raise CheckpointError(f"{what} has no visual_projection.weight: a CLIPVisionModel without the projection "
                              "cannot give CLIP embeddings (use the full CLIPModel checkpoint)")
    out = {"visual.proj": sd["visual_projection.weight"].t()}  # Linear [out, in] -> OpenAI's x @ proj, [in, out]
    renames = {"embeddings.class_embedding": "class_embedding", "embeddings.patch_embedding.weight": "conv1.weight",
               "embeddings.position_embedding.weight": "positional_embedding",
               "pre_layrnorm.weight": "ln_pre.weight", "pre_layrnorm.bias": "ln_pre.bias",  # sic: "layrnorm" is HF's
               "post_layernorm.weight": "ln_post.weight", "post_layernorm.bias": "ln_post.bias"}
    _hf_tower(sd, "vision_model.", "visual.", renames, out, what)
    return _float32(out)


_OPENAI_TEXT = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection",
                "logit_scale")


def openai_clip_text(sd: dict, what: str = "OpenAI CLIP checkpoint") -> dict:
    """The text tower of an OpenAI CLIP state dict, under our `text.` prefix (OpenAI's names otherwise)."""
    if "token_embedding.weight" not in sd or "text_projection" not in sd:
        raise CheckpointError(f"{what} has no text tower (token_embedding.weight, text_projection)")
    return _float32({"text." + k: v for k, v in sd.items() if k.startswith(_OPENAI_TEXT)})


def hf_clip_text(sd: dict, what: str = "HF CLIP checkpoint") -> dict:
    """Rename a Hugging Face CLIPModel's `text_model.*`, `text_projection.weight` and `logit_scale` to our `text.*`
    (OpenAI's names)."""
    if "text_projection.weight" not in sd or "text_model.embeddings.token_embedding.weight" not in sd:
        raise CheckpointError(f"{what} has no text tower with its projection (text_model.*, text_projection.weight): "
                              "use the full CLIPModel checkpoint")
    out = {"text.text_projection": sd["text_projection.weight"].t()}  # Linear [out, in] -> x @ text_projection
    if "logit_scale" in sd:
        out["text.logit_scale"] = sd["logit_scale"]
    renames = {"embeddings.token_embedding.weight": "token_embedding.weight",
               "embeddings.position_embedding.weight": "positional_embedding",
               "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
    _hf_tower(sd, "text_model.", "text.", renames, out, what)
    return _float32(out)


def openai_text_config(text: dict, heads: Optional[int] = None) -> TextConfig:
    """Infer the text tower's shape from `text.*` keys, as OpenAI's build_model does (heads = width // 64, unless a
    Hugging Face config.json says otherwise)."""
    width = text["text.ln_final.weight"].shape[0]
    layers = len({k.split(".")[3] for k in text if k.startswith("text.transformer.resblocks.")})
    return TextConfig(vocab_size=text["text.token_embedding.weight"].shape[0],
                      context_length=text["text.positional_embedding"].shape[0], width=width, layers=layers,
                      heads=heads or width // 64, output_dim=text["text.text_projection"].shape[1])


def gpt2_state(sd: dict, what: str = "GPT-2 checkpoint") -> dict:
    """Map a Hugging Face GPT-2 state dict, with or without the `transformer.` prefix, to our `gpt.*` names.
    `lm_head.weight`, if present, must equal `wte` (our head is tied); the causal-mask buffers are dropped."""
    out: dict = {}
    lm_head = None
    for k, v in sd.items():
        if k == "lm_head.weight":
            lm_head = v
            continue
        name = k[len("transformer."):] if k.startswith("transformer.") else k
        if name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
            continue  # buffers: the lower-triangular mask and the -1e4 fill value, rebuilt on the fly here
        key = "gpt.transformer." + name
        if key in out:
            raise CheckpointError(f"{what} holds {name} both with and without the transformer. prefix")
        out[key] = v
    wte = out.get("gpt.transformer.wte.weight")
    if lm_head is not None and wte is not None and (lm_head.shape != wte.shape or not torch.equal(lm_head, wte)):
        raise CheckpointError(f"{what}: lm_head.weight differs from transformer.wte.weight; this model ties them "
                              "(as GPT-2 and ClipCap do), so an untied head cannot be represented")
    return _float32(out)


def gpt2_config(gpt: dict, what: str = "GPT-2 checkpoint") -> GPT2Config:
    """Infer GPT-2's size from `gpt.transformer.*` keys (every GPT-2 size uses 64-wide heads)."""
    if "gpt.transformer.wte.weight" not in gpt or "gpt.transformer.wpe.weight" not in gpt:
        raise CheckpointError(f"{what} is not a GPT-2 state dict: it has no wte.weight / wpe.weight")
    vocab, n_embd = gpt["gpt.transformer.wte.weight"].shape
    n_layer = len({k.split(".")[3] for k in gpt if k.startswith("gpt.transformer.h.")})
    return GPT2Config(vocab_size=vocab, n_positions=gpt["gpt.transformer.wpe.weight"].shape[0], n_embd=n_embd,
                      n_layer=n_layer, n_head=n_embd // 64)


def clipcap_parts(sd: dict, what: str = "ClipCap checkpoint") -> Tuple[MapperConfig, int, dict, dict]:
    """Split a ClipCaptionModel state dict: (mapper config, CLIP dim it expects, `clip_project.*`, `gpt.*`)."""
    mapper = {k: v for k, v in sd.items() if k.startswith("clip_project.")}
    gpt = gpt2_state({k[len("gpt."):]: v for k, v in sd.items() if k.startswith("gpt.")}, what)
    other = sorted(k for k in sd if not k.startswith(("clip_project.", "gpt.")))
    if other:
        raise CheckpointError(f"{what}: unexpected keys ({len(other)}): {', '.join(other[:12])}")
    if "clip_project.model.0.weight" in mapper and "clip_project.model.2.weight" in mapper:
        hidden, dim_clip = mapper["clip_project.model.0.weight"].shape
        n_embd = gpt["gpt.transformer.wte.weight"].shape[1] if gpt else 768
        out = mapper["clip_project.model.2.weight"].shape[0]
        assert out % n_embd == 0, f"{what}: MLP output {out} is not a multiple of the GPT-2 width {n_embd}"
        cfg = MapperConfig(type="mlp", prefix_length=out // n_embd)
    elif "clip_project.linear.weight" in mapper and "clip_project.prefix_const" in mapper:
        rows, dim_clip = mapper["clip_project.linear.weight"].shape
        prefix_length, n_embd = mapper["clip_project.prefix_const"].shape
        layers = len({k.split(".")[3] for k in mapper if k.startswith("clip_project.transformer.layers.")})
        fc1 = mapper.get("clip_project.transformer.layers.0.mlp.fc1.weight")
        cfg = MapperConfig(type="transformer", prefix_length=prefix_length, clip_length=rows // n_embd,
                           num_layers=layers, mlp_ratio=(fc1.shape[0] / n_embd) if fc1 is not None else 2.0)
    elif "clip_project.weight" in mapper:
        raise CheckpointError(f"{what} has a single-Linear clip_project (predict.py's prefix_length > 10 variant), "
                              "which no published checkpoint uses and this model does not implement")
    else:
        raise CheckpointError(f"{what} has no recognisable mapper: expected clip_project.model.0/2.* (MLP) or "
                              "clip_project.linear / prefix_const / transformer.layers.* (TransformerMapper)")
    return cfg, dim_clip, _float32(mapper), gpt


def _check_hf_clip_config(path: str, cfg: VisionConfig):
    """A Hugging Face CLIP directory's config.json, when present, must describe the tower built here: OpenAI's
    QuickGELU and LayerNorm eps 1e-5 (other CLIP families on the Hub use exact GELU, which the weights can't show)."""
    config = os.path.join(path if os.path.isdir(path) else os.path.dirname(path), "config.json")
    if not os.path.isfile(config):
        return
    with open(config) as f:
        vc = json.load(f).get("vision_config", {})
    act, eps = vc.get("hidden_act", "quick_gelu"), vc.get("layer_norm_eps", 1e-5)
    heads = vc.get("num_attention_heads", cfg.heads)
    if act != "quick_gelu" or abs(eps - 1e-5) > 1e-12 or heads != cfg.heads:
        raise CheckpointError(f"{config}: vision tower with hidden_act={act}, layer_norm_eps={eps}, "
                              f"{heads} heads; this model implements OpenAI CLIP's quick_gelu, 1e-5 and "
                              f"{cfg.heads} heads (width // 64)")


def _hf_text_heads(path: str) -> Optional[int]:
    """A Hugging Face CLIP directory's text_config, when present: its heads, after checking it is OpenAI's tower
    (quick_gelu, LayerNorm eps 1e-5)."""
    config = os.path.join(path if os.path.isdir(path) else os.path.dirname(path), "config.json")
    if not os.path.isfile(config):
        return None
    with open(config) as f:
        tc = json.load(f).get("text_config", {})
    act, eps = tc.get("hidden_act", "quick_gelu"), tc.get("layer_norm_eps", 1e-5)
    if act != "quick_gelu" or abs(eps - 1e-5) > 1e-12:
        raise CheckpointError(f"{config}: text tower with hidden_act={act}, layer_norm_eps={eps}; this model "
                              "implements OpenAI CLIP's quick_gelu and 1e-5")
    return tc.get("num_attention_heads")


def load_clip_text(path: str, sd: Optional[dict] = None) -> Tuple[TextConfig, dict]:
    """The text tower of an OpenAI TorchScript archive or a Hugging Face CLIP checkpoint -> (config, `text.*`
    state). sd: the file's state dict when already read (the archives are large)."""
    sd = read_state_dict(path) if sd is None else sd
    if any(k.startswith("vision_model.") or k.startswith("text_model.") for k in sd):
        text = hf_clip_text(sd, path)
        return openai_text_config(text, _hf_text_heads(path)), text
    text = openai_clip_text(sd, path)
    return openai_text_config(text), text


def load_clip_vision(path: str, sd: Optional[dict] = None) -> Tuple[VisionConfig, dict]:
    """An OpenAI TorchScript archive or a Hugging Face CLIP checkpoint -> (config, `visual.*` state).
    sd: the file's state dict when already read."""
    sd = read_state_dict(path) if sd is None else sd
    if any(k.startswith("vision_model.") for k in sd):
        visual = hf_clip_visual(sd, path)
        cfg = openai_vision_config(visual)
        _check_hf_clip_config(path, cfg)
        return cfg, visual
    visual = openai_clip_visual(sd, path)
    return openai_vision_config(visual), visual


def build_official(clip_path: str, clipcap_path: str, gpt2_path: Optional[str] = None,
                   normalize_prefix: Optional[bool] = None, text: bool = False) -> ClipCap:
    """Assemble a ClipCap from official files, checking every key and shape.

    GPT-2 comes from the ClipCap checkpoint's `gpt.*` keys (all three published checkpoints carry them); a
    separate HF GPT-2 file (gpt2_path) is used only when the checkpoint has none, and refused if both are given
    and differ in shape. normalize_prefix defaults to what the checkpoint's mapper type was published with.
    text: also CLIP's text tower, from the same CLIP file."""
    clip_sd = read_state_dict(clip_path)
    vision_cfg, visual = load_clip_vision(clip_path, clip_sd)
    text_cfg, text_state = load_clip_text(clip_path, clip_sd) if text else (None, {})
    del clip_sd
    mapper_cfg, dim_clip, mapper, gpt = clipcap_parts(read_state_dict(clipcap_path), clipcap_path)
    if gpt2_path is not None:
        extra = gpt2_state(read_state_dict(gpt2_path), gpt2_path)
        if gpt and any(gpt.get(k, v).shape != v.shape for k, v in extra.items()):
            raise CheckpointError(f"{gpt2_path} and the GPT-2 inside {clipcap_path} differ in shape")
        gpt = gpt or extra
    if not gpt:
        raise CheckpointError(f"{clipcap_path} has no gpt.* weights; pass the Hugging Face GPT-2 file as well")
    if dim_clip != vision_cfg.output_dim:
        raise CheckpointError(f"{clipcap_path} expects {dim_clip}-d CLIP embeddings, but {clip_path} gives "
                              f"{vision_cfg.output_dim}-d ones (the MLP checkpoints use ViT-B/32 = 512, "
                              "the transformer checkpoint RN50x4 = 640)")
    if normalize_prefix is None:
        normalize_prefix = mapper_cfg.type == "transformer"
    if text_cfg is not None and text_cfg.output_dim != vision_cfg.output_dim:
        raise CheckpointError(f"{clip_path}: text tower gives {text_cfg.output_dim}-d embeddings, the image tower "
                              f"{vision_cfg.output_dim}-d ones")
    cfg = ClipCapConfig(vision=vision_cfg, gpt2=gpt2_config(gpt, clipcap_path), mapper=mapper_cfg,
                        normalize_prefix=normalize_prefix, text=text_cfg)
    model = ClipCap(cfg)
    state = {**visual, **text_state, **mapper, **gpt}
    for k, v in model.state_dict().items():
        # BatchNorm's num_batches_tracked is a training-only counter that torch fills itself; openai/CLIP's
        # build_model loads ResNet archives without it, so a file that lacks it is accepted (as zeros) here too
        if k.endswith(".num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(v)
    check_state_dict(model, state, what=f"official weights ({clip_path} + {clipcap_path})")
    model.load_state_dict(state)
    return model.eval()
