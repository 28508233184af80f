"""Key names and shapes of the officially published checkpoints, written out from the public reference code and
NOT derived from model/model.py, so the loader tests check our names against theirs:

* OpenAI CLIP: openai/CLIP clip/model.py (VisionTransformer, ModifiedResNet/Bottleneck/AttentionPool2d, the text
  Transformer, CLIP.__init__), with build_model's rules: ViT heads = width // 64, ResNet heads = width * 32 // 64.
  The TorchScript archives also carry `input_resolution`, `context_length` and `vocab_size` (build_model deletes
  them before load_state_dict).
* Hugging Face CLIP: transformers' CLIPModel (vision_model.*, text_model.*, visual_projection, text_projection,
  logit_scale; older files also hold the embeddings' position_ids buffer).
* Hugging Face GPT-2: GPT2Model / GPT2LMHeadModel; h.N.attn.bias is the [1, 1, n_pos, n_pos] causal-mask buffer,
  h.N.attn.masked_bias a scalar, both saved by the transformers versions of 2021.
* ClipCap: rmokady/CLIP_prefix_caption train.py (commit 88b3701): ClipCaptionModel = gpt (GPT2LMHeadModel) +
  clip_project (MLP: model.0 / model.2 Linears; TransformerMapper: linear, prefix_const, transformer.layers.N with
  norm1, attn.to_queries (no bias), attn.to_keys_values (no bias), attn.project, norm2, mlp.fc1, mlp.fc2).

`write_torchscript` (model/published.py) saves a state dict as a real TorchScript archive (a scripted module tree holding the tensors
under the same dotted names), so the tests read it exactly as the loader reads OpenAI's files:
torch.jit.load(path, map_location="cpu").state_dict().
"""
from collections import OrderedDict
from typing import Dict

import torch

from model.published import write_torchscript  # noqa: F401  (the tests' S.write_torchscript: one writer of TorchScript archives)


def _ln(spec, name, width):
    spec[f"{name}.weight"] = (width,)
    spec[f"{name}.bias"] = (width,)


def _resblocks(spec, prefix, width, layers):
    for i in range(layers):
        p = f"{prefix}.resblocks.{i}"
        spec[f"{p}.attn.in_proj_weight"] = (3 * width, width)
        spec[f"{p}.attn.in_proj_bias"] = (3 * width,)
        spec[f"{p}.attn.out_proj.weight"] = (width, width)
        spec[f"{p}.attn.out_proj.bias"] = (width,)
        _ln(spec, f"{p}.ln_1", width)
        spec[f"{p}.mlp.c_fc.weight"] = (4 * width, width)
        spec[f"{p}.mlp.c_fc.bias"] = (4 * width,)
        spec[f"{p}.mlp.c_proj.weight"] = (width, 4 * width)
        spec[f"{p}.mlp.c_proj.bias"] = (width,)
        _ln(spec, f"{p}.ln_2", width)


def _openai_text(spec, embed_dim, width, layers, context=77, vocab=49408):
    spec["positional_embedding"] = (context, width)
    spec["text_projection"] = (width, embed_dim)
    spec["logit_scale"] = ()
    spec["token_embedding.weight"] = (vocab, width)
    _ln(spec, "ln_final", width)
    _resblocks(spec, "transformer", width, layers)
    spec["input_resolution"] = ()
    spec["context_length"] = ()
    spec["vocab_size"] = ()


def openai_vit(image=224, patch=32, width=768, layers=12, embed_dim=512, text_width=512, text_layers=12,
               vocab=49408, text=True):
    """ViT-B/32 by default."""
    spec = OrderedDict()
    grid = image // patch
    spec["visual.class_embedding"] = (width,)
    spec["visual.positional_embedding"] = (grid * grid + 1, width)
    spec["visual.proj"] = (width, embed_dim)
    spec["visual.conv1.weight"] = (width, 3, patch, patch)
    _ln(spec, "visual.ln_pre", width)
    _resblocks(spec, "visual.transformer", width, layers)
    _ln(spec, "visual.ln_post", width)
    if text:
        _openai_text(spec, embed_dim, text_width, text_layers, vocab=vocab)
    return spec


def _bn(spec, name, c):
    spec[f"{name}.weight"] = (c,)
    spec[f"{name}.bias"] = (c,)
    spec[f"{name}.running_mean"] = (c,)
    spec[f"{name}.running_var"] = (c,)
    spec[f"{name}.num_batches_tracked"] = ()


def openai_resnet(image=288, width=80, layers=(4, 6, 10, 6), embed_dim=640, text_width=640, text_layers=12,
                  vocab=49408, text=True):
    """RN50x4 by default."""
    spec = OrderedDict()
    spec["visual.conv1.weight"] = (width // 2, 3, 3, 3)
    _bn(spec, "visual.bn1", width // 2)
    spec["visual.conv2.weight"] = (width // 2, width // 2, 3, 3)
    _bn(spec, "visual.bn2", width // 2)
    spec["visual.conv3.weight"] = (width, width // 2, 3, 3)
    _bn(spec, "visual.bn3", width)
    inplanes = width
    for stage, blocks in enumerate(layers):
        planes = width * 2 ** stage
        stride = 1 if stage == 0 else 2
        for b in range(blocks):
            p = f"visual.layer{stage + 1}.{b}"
            spec[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            _bn(spec, f"{p}.bn1", planes)
            spec[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            _bn(spec, f"{p}.bn2", planes)
            spec[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            _bn(spec, f"{p}.bn3", planes * 4)
            if b == 0 and (stride > 1 or inplanes != planes * 4):
                spec[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                _bn(spec, f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    embed = width * 32
    spec["visual.attnpool.positional_embedding"] = ((image // 32) ** 2 + 1, embed)
    for n in ("k_proj", "q_proj", "v_proj"):
        spec[f"visual.attnpool.{n}.weight"] = (embed, embed)
        spec[f"visual.attnpool.{n}.bias"] = (embed,)
    spec["visual.attnpool.c_proj.weight"] = (embed_dim, embed)
    spec["visual.attnpool.c_proj.bias"] = (embed_dim,)
    if text:
        _openai_text(spec, embed_dim, text_width, text_layers, vocab=vocab)
    return spec


def hf_clip(image=224, patch=32, width=768, layers=12, embed_dim=512, text_width=512, text_layers=12,
            vocab=49408, position_ids=True, text=True):
    """CLIPModel's state dict (openai/clip-vit-base-patch32 by default)."""
    spec = OrderedDict()
    grid = image // patch
    v = "vision_model"
    spec[f"{v}.embeddings.class_embedding"] = (width,)
    spec[f"{v}.embeddings.patch_embedding.weight"] = (width, 3, patch, patch)
    spec[f"{v}.embeddings.position_embedding.weight"] = (grid * grid + 1, width)
    if position_ids:
        spec[f"{v}.embeddings.position_ids"] = (1, grid * grid + 1)
    _ln(spec, f"{v}.pre_layrnorm", width)
    for i in range(layers):
        p = f"{v}.encoder.layers.{i}"
        for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
            spec[f"{p}.self_attn.{n}.weight"] = (width, width)
            spec[f"{p}.self_attn.{n}.bias"] = (width,)
        _ln(spec, f"{p}.layer_norm1", width)
        spec[f"{p}.mlp.fc1.weight"] = (4 * width, width)
        spec[f"{p}.mlp.fc1.bias"] = (4 * width,)
        spec[f"{p}.mlp.fc2.weight"] = (width, 4 * width)
        spec[f"{p}.mlp.fc2.bias"] = (width,)
        _ln(spec, f"{p}.layer_norm2", width)
    _ln(spec, f"{v}.post_layernorm", width)
    spec["visual_projection.weight"] = (embed_dim, width)
    if text:
        t = "text_model"
        spec[f"{t}.embeddings.token_embedding.weight"] = (vocab, text_width)
        spec[f"{t}.embeddings.position_embedding.weight"] = (77, text_width)
        if position_ids:
            spec[f"{t}.embeddings.position_ids"] = (1, 77)
        for i in range(text_layers):
            p = f"{t}.encoder.layers.{i}"
            for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
                spec[f"{p}.self_attn.{n}.weight"] = (text_width, text_width)
                spec[f"{p}.self_attn.{n}.bias"] = (text_width,)
            _ln(spec, f"{p}.layer_norm1", text_width)
            spec[f"{p}.mlp.fc1.weight"] = (4 * text_width, text_width)
            spec[f"{p}.mlp.fc1.bias"] = (4 * text_width,)
            spec[f"{p}.mlp.fc2.weight"] = (text_width, 4 * text_width)
            spec[f"{p}.mlp.fc2.bias"] = (text_width,)
            _ln(spec, f"{p}.layer_norm2", text_width)
        _ln(spec, f"{t}.final_layer_norm", text_width)
        spec["text_projection.weight"] = (embed_dim, text_width)
        spec["logit_scale"] = ()
    return spec


def hf_gpt2(prefix="", lm_head=False, buffers=True, n_embd=768, n_layer=12, n_pos=1024, vocab=50257):
    """GPT-2 small: prefix "" as in the gpt2 repo's files, "transformer." as save_pretrained of GPT2LMHeadModel."""
    spec = OrderedDict()
    spec[f"{prefix}wte.weight"] = (vocab, n_embd)
    spec[f"{prefix}wpe.weight"] = (n_pos, n_embd)
    for i in range(n_layer):
        p = f"{prefix}h.{i}"
        _ln(spec, f"{p}.ln_1", n_embd)
        if buffers:
            spec[f"{p}.attn.bias"] = (1, 1, n_pos, n_pos)
            spec[f"{p}.attn.masked_bias"] = ()
        spec[f"{p}.attn.c_attn.weight"] = (n_embd, 3 * n_embd)  # Conv1D: [in, out]
        spec[f"{p}.attn.c_attn.bias"] = (3 * n_embd,)
        spec[f"{p}.attn.c_proj.weight"] = (n_embd, n_embd)
        spec[f"{p}.attn.c_proj.bias"] = (n_embd,)
        _ln(spec, f"{p}.ln_2", n_embd)
        spec[f"{p}.mlp.c_fc.weight"] = (n_embd, 4 * n_embd)
        spec[f"{p}.mlp.c_fc.bias"] = (4 * n_embd,)
        spec[f"{p}.mlp.c_proj.weight"] = (4 * n_embd, n_embd)
        spec[f"{p}.mlp.c_proj.bias"] = (n_embd,)
    _ln(spec, f"{prefix}ln_f", n_embd)
    if lm_head:
        spec["lm_head.weight"] = (vocab, n_embd)
    return spec


def clipcap_mlp(prefix_length=10, dim_clip=512, n_embd=768, **gpt_kw):
    """coco_weights.pt / conceptual_weights.pt: ClipCaptionModel(prefix_length=10) with the MLP mapper."""
    spec = OrderedDict()
    for k, s in hf_gpt2(prefix="transformer.", lm_head=True, n_embd=n_embd, **gpt_kw).items():
        spec["gpt." + k] = s
    hidden = n_embd * prefix_length // 2
    spec["clip_project.model.0.weight"] = (hidden, dim_clip)
    spec["clip_project.model.0.bias"] = (hidden,)
    spec["clip_project.model.2.weight"] = (n_embd * prefix_length, hidden)
    spec["clip_project.model.2.bias"] = (n_embd * prefix_length,)
    return spec


def clipcap_transformer(prefix_length=40, clip_length=40, dim_clip=640, num_layers=8, n_embd=768, mlp_ratio=2.0,
                        **gpt_kw):
    """The transformer-mapper COCO checkpoint: ClipCaptionPrefix(40, clip_length=40, prefix_size=640, num_layers=8,
    mapping_type='transformer'). Its state_dict still holds the (frozen) GPT-2 under gpt.*."""
    spec = OrderedDict()
    for k, s in hf_gpt2(prefix="transformer.", lm_head=True, n_embd=n_embd, **gpt_kw).items():
        spec["gpt." + k] = s
    c = "clip_project"
    hidden = int(n_embd * mlp_ratio)
    for i in range(num_layers):
        p = f"{c}.transformer.layers.{i}"
        _ln(spec, f"{p}.norm1", n_embd)
        spec[f"{p}.attn.to_queries.weight"] = (n_embd, n_embd)
        spec[f"{p}.attn.to_keys_values.weight"] = (2 * n_embd, n_embd)
        spec[f"{p}.attn.project.weight"] = (n_embd, n_embd)
        spec[f"{p}.attn.project.bias"] = (n_embd,)
        _ln(spec, f"{p}.norm2", n_embd)
        spec[f"{p}.mlp.fc1.weight"] = (hidden, n_embd)
        spec[f"{p}.mlp.fc1.bias"] = (hidden,)
        spec[f"{p}.mlp.fc2.weight"] = (n_embd, hidden)
        spec[f"{p}.mlp.fc2.bias"] = (n_embd,)
    spec[f"{c}.linear.weight"] = (clip_length * n_embd, dim_clip)
    spec[f"{c}.linear.bias"] = (clip_length * n_embd,)
    spec[f"{c}.prefix_const"] = (prefix_length, n_embd)
    return spec


# -----------------------------------------------------------------------------
# Materialising a spec


def key_constant(i: int) -> float:
    """A value unique to the i-th key, exact in fp16, so a test can tell which source tensor landed where."""
    return (i % 997 + 1) / 1024.0


def materialize(spec, dtype=torch.float16, random=False, seed=0) -> Dict[str, torch.Tensor]:
    """Tensors for a spec. Cheap by default (each tensor filled with its key's constant); random=True draws
    normal values scaled like trained weights, for forward-pass comparisons."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, (k, shape) in enumerate(spec.items()):
        if k.endswith("num_batches_tracked") or k in ("input_resolution", "context_length", "vocab_size"):
            out[k] = torch.tensor(0, dtype=torch.long)
        elif k.endswith(".attn.bias") and len(shape) == 4:  # GPT-2's causal mask buffer
            out[k] = torch.tril(torch.ones(shape[-2:], dtype=torch.uint8)).view(shape)
        elif k.endswith(".attn.masked_bias"):
            out[k] = torch.tensor(-1e4)
        elif k.endswith("position_ids"):
            out[k] = torch.arange(shape[-1]).view(shape)
        elif k.endswith("running_var"):
            out[k] = (torch.rand(shape, generator=g) + 0.5).to(dtype) if random else torch.ones(shape, dtype=dtype)
        elif random:
            fan_in = shape[1] if len(shape) >= 2 else 1
            scale = 0.02 if len(shape) < 2 else fan_in ** -0.5
            t = torch.randn(shape, generator=g) * scale
            if k.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight", "bn1.weight",
                           "bn2.weight", "bn3.weight", "layer_norm1.weight", "layer_norm2.weight")):
                t = 1.0 + t
            out[k] = t.to(dtype)
        else:
            out[k] = torch.full(shape, key_constant(i), dtype=dtype)
    for k in out:
        if k.endswith("lm_head.weight"):  # GPT2LMHeadModel ties its head to wte: a saved state dict holds one tensor twice
            base = k[: -len("lm_head.weight")]
            out[k] = out.get(base + "transformer.wte.weight", out.get(base + "wte.weight"))
    return out


def openai_to_hf_visual(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The inverse of what the loader does, written independently here from transformers'
    convert_clip_original_pytorch_to_hf.py rules: in_proj chunks into q, k, v; proj.T is visual_projection."""
    out = {}
    for k, v in sd.items():
        if not k.startswith("visual."):
            continue
        n = k[len("visual."):]
        if n == "proj":
            out["visual_projection.weight"] = v.t().contiguous()
        elif n == "class_embedding":
            out["vision_model.embeddings.class_embedding"] = v
        elif n == "conv1.weight":
            out["vision_model.embeddings.patch_embedding.weight"] = v
        elif n == "positional_embedding":
            out["vision_model.embeddings.position_embedding.weight"] = v
        elif n.startswith("ln_pre."):
            out["vision_model.pre_layrnorm." + n.split(".")[1]] = v
        elif n.startswith("ln_post."):
            out["vision_model.post_layernorm." + n.split(".")[1]] = v
        else:
            _, _, i, *rest = n.split(".")
            p = f"vision_model.encoder.layers.{i}"
            rest = ".".join(rest)
            if rest.startswith("attn.in_proj_"):
                kind = rest.split("_")[-1]
                for name, chunk in zip(("q_proj", "k_proj", "v_proj"), v.chunk(3, dim=0)):
                    out[f"{p}.self_attn.{name}.{kind}"] = chunk.contiguous()
            else:
                for a, b in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                    if rest.startswith(a + "."):
                        out[f"{p}.{b}.{rest[len(a) + 1:]}"] = v
                        break
                else:
                    raise AssertionError(f"unmapped key {k}")
    return out
