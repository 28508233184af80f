"""
ClipCap ("CLIP prefix captioning") in one file.

    image --CLIP vision tower--> embedding (B, D)
          --mapping network----> prefix (B, P, E)      the only part ClipCap trains
          --GPT-2--------------> caption, token by token
    caption --CLIP text tower--> text embedding (B, D)   optional: CLIPScore, to gate and re-rank captions

Parameter names follow the published checkpoints so they load without renaming:
  * the vision tower uses OpenAI CLIP's `visual.*` names (conv1, class_embedding, transformer.resblocks.N...),
    for the ViT (ViT-B/32) and for the ModifiedResNet (RN50x4) alike,
  * the text tower uses OpenAI CLIP's top-level names (token_embedding, transformer.resblocks.N, ln_final,
    text_projection, logit_scale) under `text.`,
  * the mappers use rmokady/CLIP_prefix_caption's `clip_project.*` names,
  * GPT-2 uses Hugging Face's names (`transformer.h.N.attn.c_attn`, Conv1D weights stored [in, out]).
The published files themselves (OpenAI CLIP archives, HF CLIP and GPT-2, ClipCap's checkpoints) are read by
official.py, beside this file, which checks every key and shape; where to get them: docs/official-weights.md.

Training (train.py), export (export.py) and the toy world (toy.py) all import this one file.
Generation is written once, against a *step function* with exactly the decoder graph's interface
(see docs/pack-format.md), so the same greedy and beam search run over PyTorch and over the exported ONNX.
"""

import math
from collections import OrderedDict
from dataclasses import dataclass, field, asdict
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.nn import functional as F

# -----------------------------------------------------------------------------
# Configuration


@dataclass
class VisionConfig:
    image_size: int = 224  # input side in pixels; ViT-B/32 takes 224, RN50x4 288
    patch_size: int = 32  # side of one square patch (the "/32"); ViT only
    width: int = 768  # transformer width (ViT); stem width (ResNet: RN50x4 has 80, its features are 32x that)
    layers: int = 12  # residual attention blocks; ViT only
    heads: int = 12  # attention heads (ViT: width // 64; ResNet attention pool: width * 32 // 64, 40 for RN50x4)
    output_dim: int = 512  # CLIP embedding size after the final projection (ViT-B/32 512, RN50x4 640)
    arch: str = "vit"  # "vit" (VisionTransformer) or "resnet" (ModifiedResNet with attention pooling)
    resnet_layers: Tuple[int, ...] = (4, 6, 10, 6)  # Bottleneck blocks per stage; ResNet only (RN50x4's)


@dataclass
class GPT2Config:
    vocab_size: int = 50257  # GPT-2's BPE vocabulary; the toy keeps it so the real tokenizer applies
    n_positions: int = 1024  # longest sequence (prefix + caption) the position table covers
    n_embd: int = 768  # model width
    n_layer: int = 12  # transformer blocks
    n_head: int = 12  # attention heads
    layer_norm_epsilon: float = 1e-5  # as in HF GPT-2


@dataclass
class MapperConfig:
    type: str = "mlp"  # "mlp" (Linear-Tanh-Linear) or "transformer" (ClipCap's TransformerMapper)
    prefix_length: int = 10  # P: GPT-2 input embeddings produced per image
    clip_length: int = 10  # transformer only: tokens the CLIP embedding is first expanded into
    num_layers: int = 8  # transformer only: mapper depth
    num_heads: int = 8  # transformer only
    mlp_ratio: float = 2.0  # transformer only: hidden size of each layer's MLP, as a multiple of width


@dataclass
class TextConfig:
    vocab_size: int = 49408  # CLIP's BPE: 2 x 256 bytes, 48894 merges, <|startoftext|>, <|endoftext|> (the largest id)
    context_length: int = 77  # longest text in tokens, <|startoftext|> and <|endoftext|> included
    width: int = 512  # transformer width (ViT-B/32's text tower; RN50x4's is 640)
    layers: int = 12  # residual attention blocks
    heads: int = 8  # attention heads (width // 64)
    output_dim: int = 512  # joint embedding size: must equal the vision tower's output_dim
    layer_norm_eps: float = 1e-5  # OpenAI CLIP's (nn.LayerNorm's default), in every block and ln_final


@dataclass
class ClipCapConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    gpt2: GPT2Config = field(default_factory=GPT2Config)
    mapper: MapperConfig = field(default_factory=MapperConfig)
    normalize_prefix: bool = False  # L2-normalise the CLIP embedding before the mapper (train.py --normalize_prefix)
    text: Optional[TextConfig] = None  # CLIP's text tower, for CLIPScore; None: captions are not scored

    @staticmethod
    def from_dict(d: dict) -> "ClipCapConfig":
        return ClipCapConfig(
            vision=VisionConfig(**d["vision"]),
            gpt2=GPT2Config(**d["gpt2"]),
            mapper=MapperConfig(**d["mapper"]),
            normalize_prefix=bool(d.get("normalize_prefix", False)),
            text=TextConfig(**d["text"]) if d.get("text") else None,  # checkpoints before the text tower lack it
        )

    def to_dict(self) -> dict:
        return asdict(self)


# Token ids of GPT-2's vocabulary that generation relies on.
EOS_ID = 50256  # <|endoftext|>; ends a caption without being part of it
PERIOD_ID = 13  # "."; ClipCap's stop token, kept as the caption's last token
IGNORE_INDEX = -100  # label value that cross-entropy skips (never a real token id, unlike ClipCap's 0 = "!")

# -----------------------------------------------------------------------------
# CLIP vision tower (OpenAI's VisionTransformer: class token, pre-LN, QuickGELU, projection)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    """Multi-head self-attention holding nn.MultiheadAttention's parameter names (in_proj_*, out_proj),
    written out so the ONNX export is plain MatMuls. The text tower's is causal (each token sees itself and
    what comes before), the vision tower's is not."""

    def __init__(self, width: int, heads: int, causal: bool = False):
        super().__init__()
        assert width % heads == 0, f"CLIP width {width} must be divisible by heads {heads}"
        self.heads, self.causal = heads, causal
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.normal_(self.in_proj_weight, std=width**-0.5)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))  # (B, H, T, T)
        if self.causal:
            pos = torch.arange(T, device=x.device)
            att = att.masked_fill(pos[None, :] > pos[:, None], torch.finfo(att.dtype).min)  # (T, T): no peeking ahead
        y = att.softmax(dim=-1) @ v  # (B, H, T, hd)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, causal: bool = False, eps: float = 1e-5):
        super().__init__()
        self.attn = CLIPAttention(width, heads, causal)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, width * 4)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(width * 4, width))]
            )
        )
        self.ln_2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class CLIPTransformerStack(nn.Module):
    """OpenAI's `Transformer`: the `resblocks` both towers hold."""

    def __init__(self, width: int, layers: int, heads: int, causal: bool = False, eps: float = 1e-5):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, causal, eps) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        assert cfg.image_size % cfg.patch_size == 0, (
            f"image_size {cfg.image_size} must be a multiple of patch_size {cfg.patch_size}"
        )
        self.cfg = cfg
        scale = cfg.width**-0.5
        grid = cfg.image_size // cfg.patch_size
        self.conv1 = nn.Conv2d(3, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(cfg.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, cfg.width))
        self.ln_pre = nn.LayerNorm(cfg.width)
        self.transformer = CLIPTransformerStack(cfg.width, cfg.layers, cfg.heads)
        self.ln_post = nn.LayerNorm(cfg.width)
        self.proj = nn.Parameter(scale * torch.randn(cfg.width, cfg.output_dim))

    def forward(self, pixel_values):
        B, C, H, W = pixel_values.shape
        assert C == 3 and H == W == self.cfg.image_size, (
            f"pixel_values must be (B, 3, {self.cfg.image_size}, {self.cfg.image_size}), got {tuple(pixel_values.shape)}"
        )
        x = self.conv1(pixel_values)  # (B, width, grid, grid)
        x = x.flatten(2).transpose(1, 2)  # (B, grid*grid, width)
        cls = self.class_embedding.to(x.dtype).expand(B, 1, -1)  # (B, 1, width)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding  # (B, grid*grid+1, width)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0, :]) @ self.proj  # (B, output_dim)


# -----------------------------------------------------------------------------
# CLIP text tower (OpenAI's encode_text: causal transformer, pooled at <|endoftext|>, projected)


class CLIPTextTransformer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width))
        self.transformer = CLIPTransformerStack(cfg.width, cfg.layers, cfg.heads, causal=True, eps=cfg.layer_norm_eps)
        self.ln_final = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        self.text_projection = nn.Parameter(torch.empty(cfg.width, cfg.output_dim))  # used as x @ text_projection
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's contrastive temperature; unused here
        nn.init.normal_(self.token_embedding.weight, std=0.02)  # OpenAI's initialize_parameters
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=cfg.width**-0.5)

    def forward(self, input_ids):
        """input_ids (B, T), each row <|startoftext|> ... <|endoftext|> then any smaller ids (0): (B, output_dim).
        Causal attention makes the result independent of what follows <|endoftext|>, so rows may be padded."""
        B, T = input_ids.shape
        assert T <= self.cfg.context_length, f"text of {T} tokens exceeds context_length {self.cfg.context_length}"
        x = self.token_embedding(input_ids) + self.positional_embedding[:T]  # (B, T, width)
        x = self.ln_final(self.transformer(x))
        eot = input_ids.argmax(dim=-1)  # (B,): <|endoftext|> is the largest id, as OpenAI pools
        x = x.gather(1, eot[:, None, None].expand(B, 1, x.shape[-1])).squeeze(1)  # (B, width)
        return x @ self.text_projection  # (B, output_dim), not normalised


# -----------------------------------------------------------------------------
# CLIP ResNet vision tower (OpenAI's ModifiedResNet, e.g. RN50x4: 288 px -> 640)
#
# Three stem convolutions and an average pool instead of torchvision's one conv and max pool; strided blocks
# downsample with an average pool ("anti-aliased") before a stride-1 convolution; and the global average pool is
# replaced by one layer of attention whose query is the mean of the feature map. Names follow `visual.*` of the
# OpenAI checkpoints, including BatchNorm's running statistics.


class Bottleneck(nn.Module):
    expansion = 4  # output channels = planes * 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = None
        if stride > 1 or inplanes != planes * self.expansion:
            # "-1" holds no parameters, so the checkpoint's keys are downsample.0.* (conv) and downsample.1.* (bn)
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False)),
                ("1", nn.BatchNorm2d(planes * self.expansion)),
            ]))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))  # (B, planes, H, W)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))  # (B, 4 planes, H / stride, W / stride)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class AttentionPool2d(nn.Module):
    """One multi-head attention step: the query is the mean of the feature map, keys and values are the mean and
    every position, each plus a learned positional embedding. The output is the query's result, projected."""

    def __init__(self, grid: int, embed_dim: int, num_heads: int, output_dim: int):
        super().__init__()
        assert embed_dim % num_heads == 0, f"attention pool width {embed_dim} must be divisible by {num_heads} heads"
        self.num_heads = num_heads
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, embed_dim) / embed_dim**0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)

    def forward(self, x):
        B, C, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + self.positional_embedding  # (B, HW+1, C)
        nh, hd = self.num_heads, C // self.num_heads
        q = self.q_proj(x[:, :1]).view(B, 1, nh, hd).transpose(1, 2)  # (B, nh, 1, hd): only the mean asks
        k = self.k_proj(x).view(B, -1, nh, hd).transpose(1, 2)  # (B, nh, HW+1, hd)
        v = self.v_proj(x).view(B, -1, nh, hd).transpose(1, 2)
        att = ((q @ k.transpose(-2, -1)) * hd**-0.5).softmax(dim=-1)  # (B, nh, 1, HW+1)
        y = (att @ v).transpose(1, 2).reshape(B, C)  # (B, C)
        return self.c_proj(y)  # (B, output_dim)


class ModifiedResNet(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        assert cfg.image_size % 32 == 0, f"a CLIP ResNet needs image_size divisible by 32, got {cfg.image_size}"
        assert len(cfg.resnet_layers) == 4, f"resnet_layers must list 4 stages, got {cfg.resnet_layers}"
        self.cfg = cfg
        w = cfg.width
        self.conv1 = nn.Conv2d(3, w // 2, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w // 2)
        self.conv2 = nn.Conv2d(w // 2, w // 2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(w // 2)
        self.conv3 = nn.Conv2d(w // 2, w, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(w)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = w
        for i, (blocks, stride) in enumerate(zip(cfg.resnet_layers, (1, 2, 2, 2))):
            planes = w * 2**i
            layer = [Bottleneck(inplanes, planes, stride)] + [Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes * 4
        self.attnpool = AttentionPool2d(cfg.image_size // 32, w * 32, cfg.heads, cfg.output_dim)

    def forward(self, pixel_values):
        B, C, H, W = pixel_values.shape
        assert C == 3 and H == W == self.cfg.image_size, (
            f"pixel_values must be (B, 3, {self.cfg.image_size}, {self.cfg.image_size}), got {tuple(pixel_values.shape)}"
        )
        x = F.relu(self.bn1(self.conv1(pixel_values)))  # (B, w/2, S/2, S/2)
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(F.relu(self.bn3(self.conv3(x))))  # (B, w, S/4, S/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 32 w, S/32, S/32)
        return self.attnpool(x)  # (B, output_dim)


# -----------------------------------------------------------------------------
# GPT-2 (Hugging Face layout and names)


class Conv1D(nn.Module):
    """HF GPT-2's linear layer: weight stored [in, out], so y = x @ W + b (one MatMul in ONNX, no transpose)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        return x @ self.weight + self.bias


def gelu_new(x):
    """GPT-2's tanh approximation of GELU, written out so every opset exports it."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, f"n_embd {cfg.n_embd} must be divisible by n_head {cfg.n_head}"
        self.n_head = cfg.n_head
        self.c_attn = Conv1D(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = Conv1D(cfg.n_embd, cfg.n_embd)

    def forward(self, x, allowed, past_k, past_v):
        # x (B, T, C); allowed (B or 1, 1, T, S) bool; past_k/v (B, H, past, hd) or None
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)  # (B, H, S, hd) with S = past + T
            v = torch.cat([past_v, v], dim=2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.n_head))  # (B, H, T, S)
        att = att.masked_fill(~allowed, torch.finfo(att.dtype).min)
        y = att.softmax(dim=-1) @ v  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y), k, v


class GPT2MLP(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.c_fc = Conv1D(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = Conv1D(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = GPT2Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x, allowed, past_k, past_v):
        a, k, v = self.attn(self.ln_1(x), allowed, past_k, past_v)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, k, v


class GPT2Model(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.h = nn.ModuleList([GPT2Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.01)


Past = List[Tuple[torch.Tensor, torch.Tensor]]  # per layer: key, value, each (B, H, past, hd)


class GPT2LMHeadModel(nn.Module):
    """GPT-2 with the LM head tied to `wte`. The head is computed from `wte` directly (no `lm_head` parameter),
    so the exported decoder stores the 50257 x E table once; loaders check an official `lm_head.weight` equals it."""

    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.cfg = cfg
        self.transformer = GPT2Model(cfg)
        # A zero bias makes the 2-D head export as Gemm(transB=1), which reads `wte` in place; without one, torch 1.13
        # exports MatMul against a constant-folded transposed copy and the decoder stores the table twice.
        self.register_buffer("lm_head_bias", torch.zeros(cfg.vocab_size), persistent=False)

    def hidden(self, inputs_embeds, attention_mask=None, past: Optional[Past] = None):
        """inputs_embeds (B, T, E); attention_mask (B, past + T) of 1/0 or None.
        Returns the final hidden states (B, T, E) and the new past."""
        B, T, _ = inputs_embeds.shape
        past_len = 0 if past is None else past[0][0].shape[2]
        assert past_len + T <= self.cfg.n_positions, (
            f"sequence of {past_len + T} exceeds n_positions {self.cfg.n_positions}"
        )
        positions = torch.arange(T, device=inputs_embeds.device) + past_len  # (T,)
        x = inputs_embeds + self.transformer.wpe(positions)  # (B, T, E)
        S = past_len + T
        allowed = torch.arange(S, device=x.device)[None, :] <= positions[:, None]  # (T, S) causal
        allowed = allowed[None, None]  # (1, 1, T, S)
        if attention_mask is not None:
            allowed = allowed & attention_mask[:, None, None, :].bool()  # (B, 1, T, S)
        presents: Past = []
        for i, block in enumerate(self.transformer.h):
            pk, pv = (None, None) if past is None else past[i]
            x, k, v = block(x, allowed, pk, pv)
            presents.append((k, v))
        return self.transformer.ln_f(x), presents

    def logits(self, h):
        return F.linear(h, self.transformer.wte.weight, self.lm_head_bias)  # (..., V), the head tied to `wte`

    def forward(self, inputs_embeds, attention_mask=None, past: Optional[Past] = None, last_only=False):
        """Logits (B, T, V), or (B, V) for the last position only, and the new past."""
        h, presents = self.hidden(inputs_embeds, attention_mask, past)
        return self.logits(h[:, -1, :] if last_only else h), presents

    def decode_step(self, input_ids, inputs_embeds, attention_mask, past: Optional[Past]):
        """Exactly the decoder graph's interface (docs/pack-format.md): embeds come before ids."""
        x = torch.cat([inputs_embeds, self.transformer.wte(input_ids)], dim=1)  # (B, nEmbeds + nIds, E)
        return self.forward(x, attention_mask, past, last_only=True)


# -----------------------------------------------------------------------------
# Mapping networks (rmokady/CLIP_prefix_caption names)


class MLPMapper(nn.Module):
    """Linear -> Tanh -> Linear with sizes (D, P*E/2, P*E): ClipCap's `MLP`."""

    def __init__(self, dim_clip: int, dim_embedding: int, prefix_length: int):
        super().__init__()
        self.prefix_length, self.dim_embedding = prefix_length, dim_embedding
        hidden = dim_embedding * prefix_length // 2
        self.model = nn.Sequential(
            nn.Linear(dim_clip, hidden), nn.Tanh(), nn.Linear(hidden, dim_embedding * prefix_length)
        )

    def forward(self, x):
        return self.model(x).view(x.shape[0], self.prefix_length, self.dim_embedding)  # (B, P, E)


class MapperAttention(nn.Module):
    """ClipCap's MultiHeadAttention (self-attention use only): no bias on the q and kv projections."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        assert dim % num_heads == 0, f"mapper width {dim} must be divisible by {num_heads} heads"
        self.num_heads = num_heads
        self.to_queries = nn.Linear(dim, dim, bias=False)
        self.to_keys_values = nn.Linear(dim, dim * 2, bias=False)
        self.project = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        hd = C // self.num_heads
        q = self.to_queries(x).view(B, T, self.num_heads, hd).transpose(1, 2)  # (B, H, T, hd)
        kv = self.to_keys_values(x).view(B, T, 2, self.num_heads, hd)  # keys first, then values, as the reference
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # (B, H, T, hd)
        att = (q @ k.transpose(-2, -1)) * hd**-0.5  # (B, H, T, T), no causal mask
        y = att.softmax(dim=-1) @ v
        return self.project(y.transpose(1, 2).reshape(B, T, C))


class MapperMLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class MapperLayer(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MapperAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MapperMLP(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class MapperTransformer(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_layers: int, mlp_ratio: float):
        super().__init__()
        self.layers = nn.ModuleList([MapperLayer(dim, num_heads, mlp_ratio) for _ in range(num_layers)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class TransformerMapper(nn.Module):
    """ClipCap's TransformerMapper: expand the embedding to clip_length tokens, append a learned constant of
    prefix_length tokens, run a transformer, and keep the last prefix_length outputs."""

    def __init__(self, dim_clip: int, dim_embedding: int, cfg: MapperConfig):
        super().__init__()
        self.clip_length = cfg.clip_length
        self.transformer = MapperTransformer(dim_embedding, cfg.num_heads, cfg.num_layers, cfg.mlp_ratio)
        self.linear = nn.Linear(dim_clip, cfg.clip_length * dim_embedding)
        self.prefix_const = nn.Parameter(torch.randn(cfg.prefix_length, dim_embedding))

    def forward(self, x):
        B = x.shape[0]
        x = self.linear(x).view(B, self.clip_length, -1)  # (B, clip_length, E)
        prefix = self.prefix_const.unsqueeze(0).expand(B, -1, -1)  # (B, P, E)
        out = self.transformer(torch.cat([x, prefix], dim=1))  # (B, clip_length + P, E)
        return out[:, self.clip_length :]  # (B, P, E)


# -----------------------------------------------------------------------------
# The whole model


class ClipCap(nn.Module):
    def __init__(self, cfg: ClipCapConfig):
        super().__init__()
        self.cfg = cfg
        E = cfg.gpt2.n_embd
        if cfg.vision.arch == "vit":
            self.visual = VisionTransformer(cfg.vision)
        elif cfg.vision.arch == "resnet":
            self.visual = ModifiedResNet(cfg.vision)
        else:
            raise ValueError(f"unknown vision arch {cfg.vision.arch!r}; expected 'vit' or 'resnet'")
        if cfg.mapper.type == "mlp":
            self.clip_project = MLPMapper(cfg.vision.output_dim, E, cfg.mapper.prefix_length)
        elif cfg.mapper.type == "transformer":
            self.clip_project = TransformerMapper(cfg.vision.output_dim, E, cfg.mapper)
        else:
            raise ValueError(f"unknown mapper type {cfg.mapper.type!r}; expected 'mlp' or 'transformer'")
        self.gpt = GPT2LMHeadModel(cfg.gpt2)
        self.text = None
        if cfg.text is not None:
            assert cfg.text.output_dim == cfg.vision.output_dim, (
                f"text output_dim {cfg.text.output_dim} must equal vision output_dim {cfg.vision.output_dim}: "
                "both embed into CLIP's joint space"
            )
            self.text = CLIPTextTransformer(cfg.text)

    def encode_image(self, pixel_values):
        return self.visual(pixel_values)  # (B, D), not normalised

    def encode_text(self, input_ids):
        assert self.text is not None, "this model has no text tower (ClipCapConfig.text is None)"
        return self.text(input_ids)  # (B, D), not normalised

    def prefix(self, image_embeds):
        if self.cfg.normalize_prefix:
            image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
        return self.clip_project(image_embeds)  # (B, P, E)

    def caption_loss(self, image_embeds, tokens, lengths):
        """Teacher-forced cross-entropy on caption tokens only.
        image_embeds (B, D); tokens (B, L) right-padded with any valid id; lengths (B,) real token counts."""
        return prefix_caption_loss(self.gpt, self.prefix(image_embeds), tokens, lengths)


def prefix_caption_loss(gpt: GPT2LMHeadModel, prefix, tokens, lengths):
    """GPT-2 reads prefix (B, P, E) then the caption tokens (B, L); the loss covers caption tokens only
    (padding is IGNORE_INDEX, never a real id)."""
    P = prefix.shape[1]
    B, L = tokens.shape
    x = torch.cat([prefix, gpt.transformer.wte(tokens)], dim=1)  # (B, P + L, E)
    h, _ = gpt.hidden(x)  # (B, P + L, E)
    logits = gpt.logits(h[:, P - 1 : -1])  # position P-1+t predicts caption token t: (B, L, V)
    pad = torch.arange(L, device=tokens.device)[None, :] >= lengths[:, None]
    targets = tokens.masked_fill(pad, IGNORE_INDEX)
    return F.cross_entropy(logits.reshape(B * L, -1), targets.reshape(-1), ignore_index=IGNORE_INDEX)


# -----------------------------------------------------------------------------
# Generation, written once against the decoder graph's interface


StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Optional[Past]], Tuple[torch.Tensor, Past]]


def torch_step(gpt: GPT2LMHeadModel) -> StepFn:
    """The PyTorch model as a step function: (input_ids, inputs_embeds, attention_mask, past) -> (logits, present)."""

    @torch.no_grad()
    def step(ids, embeds, mask, past):
        return gpt.decode_step(ids, embeds, mask, past)

    return step


@dataclass
class Beam:
    token_ids: List[int]  # as Generated.token_ids
    score: float  # sum of the chosen log-probs (NOT normalised)
    length: int  # tokens the search generated for it, an <|endoftext|> included; ranks use score / length


@dataclass
class Generated:
    token_ids: List[int]  # includes the stop token "." when one ended it, never <|endoftext|>
    logprobs: List[float]  # log-probability of each step's choice (greedy); empty for beam
    score: float  # sum of chosen log-probs / steps taken (ClipCap's length-normalised score)
    beams: List[Beam] = field(default_factory=list)  # beam search: every final beam, best score / length first


def _log_softmax64(logits: torch.Tensor) -> torch.Tensor:
    # float64, so the JS engine (which computes in doubles) ranks candidates identically
    return torch.log_softmax(logits.to(torch.float64), dim=-1)


def _prefill(step: StepFn, prefix: torch.Tensor):
    assert prefix.dim() == 3 and prefix.shape[0] == 1, f"prefix must be (1, P, E), got {tuple(prefix.shape)}"
    P = prefix.shape[1]
    ids = torch.zeros(1, 0, dtype=torch.long)
    return step(ids, prefix, torch.ones(1, P, dtype=torch.long), None)


def greedy_search(step: StepFn, prefix, stop_ids: Sequence[int] = (PERIOD_ID, EOS_ID), max_tokens: int = 67,
                  eos_id: int = EOS_ID) -> Generated:
    """Argmax at every step (ties go to the lower id) until a stop token or max_tokens."""
    P, E = prefix.shape[1], prefix.shape[2]
    logits, past = _prefill(step, prefix)
    tokens, logprobs = [], []
    for i in range(max_tokens):
        logp = _log_softmax64(logits[0])
        t = int(torch.argmax(logp))  # first maximum, i.e. the lower id on ties
        logprobs.append(float(logp[t]))
        if t != eos_id:
            tokens.append(t)
        if t in stop_ids or i == max_tokens - 1:
            break
        ids = torch.tensor([[t]], dtype=torch.long)
        logits, past = step(ids, prefix.new_zeros(1, 0, E), torch.ones(1, P + i + 1, dtype=torch.long), past)
    return Generated(tokens, logprobs, sum(logprobs) / len(logprobs))


def _top_desc(values: torch.Tensor, k: int):
    """Top-k of a 1-D tensor, descending, ties to the lower index (a stable sort, unlike torch.topk)."""
    v, i = torch.sort(values, descending=True, stable=True)
    return v[:k], i[:k]


def beam_search(step: StepFn, prefix, beams: int = 5, stop_ids: Sequence[int] = (PERIOD_ID, EOS_ID),
                max_tokens: int = 67, eos_id: int = EOS_ID) -> Generated:
    """ClipCap's beam search semantics (generate_beam), without its padding-with-"!" artefact.

    Beams run as the batch dimension. Candidates are ranked by the length-normalised score (sum of log-probs
    / tokens generated). A stopped beam competes with its score unchanged and grows no further.
    Ties go to the lower (beam, token) pair; a stopped beam's own candidate counts as token -1.
    """
    P, E = prefix.shape[1], prefix.shape[2]
    logits, past = _prefill(step, prefix)
    logp = _log_softmax64(logits[0])
    top_v, top_i = _top_desc(logp, beams)
    seqs = [[int(t)] for t in top_i]  # raw ids, eos included while decoding
    scores = [float(v) for v in top_v]  # summed log-probs
    lengths = [1] * beams
    stopped = [int(t) in stop_ids for t in top_i]
    past = [(k.expand(beams, -1, -1, -1).contiguous(), v.expand(beams, -1, -1, -1).contiguous()) for k, v in past]
    for i in range(1, max_tokens):
        if all(stopped):
            break
        ids = torch.tensor([[s[-1]] for s in seqs], dtype=torch.long)  # a stopped row's output is ignored
        logits, past = step(ids, prefix.new_zeros(beams, 0, E), torch.ones(beams, P + i, dtype=torch.long), past)
        logp = _log_softmax64(logits)  # (beams, V)
        cands = []  # (normalised score, beam, token, summed score)
        for b in range(beams):
            if stopped[b]:
                cands.append((scores[b] / lengths[b], b, -1, scores[b]))
                continue
            summed = scores[b] + logp[b]
            avg_v, avg_i = _top_desc(summed / (lengths[b] + 1), beams)
            for v, t in zip(avg_v.tolist(), avg_i.tolist()):
                cands.append((v, b, t, float(summed[t])))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        chosen = cands[:beams]
        src = [c[1] for c in chosen]
        seqs = [seqs[b] + ([t] if t >= 0 else []) for _, b, t, _ in chosen]
        scores = [s for _, _, _, s in chosen]
        lengths = [lengths[b] + (1 if t >= 0 else 0) for _, b, t, _ in chosen]
        stopped = [stopped[b] or t in stop_ids for _, b, t, _ in chosen]
        index = torch.tensor(src, dtype=torch.long)
        past = [(k.index_select(0, index), v.index_select(0, index)) for k, v in past]
    norm = [s / n for s, n in zip(scores, lengths)]
    order = sorted(range(beams), key=lambda b: (-norm[b], b))  # already so after any step; ties to the earlier beam
    final = [Beam([t for t in seqs[b] if t != eos_id], scores[b], lengths[b]) for b in order]
    return Generated(final[0].token_ids, [], norm[order[0]], final)


# -----------------------------------------------------------------------------
# CLIPScore: gating and beam re-ranking with the text tower (docs/pack-format.md, "CLIP scores")


def pad_text_ids(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """Token rows (each <|startoftext|> ... <|endoftext|>) as one (k, longest) batch, padded with 0 after the
    <|endoftext|>: the text tower pools at the largest id, so padding must be smaller, and is then ignored."""
    assert rows and all(rows), "every text row needs at least <|startoftext|> and <|endoftext|>"
    n = max(len(r) for r in rows)
    return torch.tensor([list(r) + [0] * (n - len(r)) for r in rows], dtype=torch.long)  # (k, n)


def clip_score(image_embeds, text_embeds, w: float = 2.5) -> torch.Tensor:
    """CLIPScore (Hessel et al. 2021): w * max(cos, 0), in float64 as the JS engine computes it.
    image_embeds (D,) or (k, D), text_embeds (k, D): (k,) scores, the image broadcast over the texts.
    CLIP's text tower is a model input: whoever calls this scores a caption's trimmed text, and gives an empty
    text 0 without running the tower (pack-format.md)."""
    a, b = torch.as_tensor(image_embeds).double(), torch.as_tensor(text_embeds).double()
    dot, aa, bb = (a * b).sum(-1), (a * a).sum(-1), (b * b).sum(-1)
    cos = dot / torch.sqrt(aa * bb)  # one square root, as the engine (src/captioner/clip-score.ts) computes it
    return w * torch.where(aa * bb > 0, cos, torch.zeros_like(cos)).clamp(min=0.0)  # a zero vector scores 0


def rerank(beams: Sequence[Beam], clip_scores: Sequence[float], weight: float) -> int:
    """Index of the beam with the highest score / length + weight * clipScore; ties go to the earlier beam, so
    weight 0 keeps beam search's own answer (beams come best score / length first)."""
    assert len(beams) == len(clip_scores) > 0, f"{len(beams)} beams but {len(clip_scores)} CLIP scores"
    rank = [b.score / b.length + weight * float(c) for b, c in zip(beams, clip_scores)]
    return max(range(len(beams)), key=lambda i: (rank[i], -i))


# -----------------------------------------------------------------------------
# Loading and saving our own checkpoints


class CheckpointError(ValueError):
    """A checkpoint does not fit the model: names every missing, unexpected and mismatched key."""


def check_state_dict(model: nn.Module, state: dict, what: str = "checkpoint"):
    """Every key and shape must match; the error lists all differences at once."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or mismatched:
        lines = [f"{what} does not match the model configuration:"]
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", … ({len(keys) - 12} more)" if len(keys) > 12 else "")
                lines.append(f"  {label} ({len(keys)}): {shown}")
        raise CheckpointError("\n".join(lines))


def save_checkpoint(model: ClipCap, path: str, extra: Optional[dict] = None):
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict(), **(extra or {})}, path)


def load_checkpoint(path: str) -> ClipCap:
    """Load a checkpoint written by save_checkpoint, checking every key and shape against its config."""
    try:
        blob = torch.load(path, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist")
    except Exception as e:  # torch raises several types for a damaged file
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file ({type(e).__name__}: {e})") from e
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise CheckpointError(f"{path} is not a ClipCap checkpoint: expected keys 'config' and 'state_dict'")
    model = ClipCap(ClipCapConfig.from_dict(blob["config"]))
    check_state_dict(model, blob["state_dict"], what=path)
    model.load_state_dict(blob["state_dict"])
    return model.eval()
