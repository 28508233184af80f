"""
Mapper training, ClipCap style: CLIP embeddings are computed once, GPT-2 stays frozen, and the caption loss
(teacher forcing on prefix + caption, loss on caption tokens only) back-propagates through GPT-2 into the mapper.

The toy world (toy.py) calls `train_mapper` directly; training at scale builds on the same pieces.
"""

import math
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch

from .model import EOS_ID, ClipCap


@dataclass
class MapperTrainConfig:
    epochs: int = 10  # passes over the (embedding, caption) pairs
    batch_size: int = 64  # pairs per step
    lr: float = 2e-3  # AdamW peak learning rate, after warmup
    warmup_steps: int = 50  # linear warmup, then cosine decay to 10% of lr
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    seed: int = 0  # shuffling and initialisation
    log_every: int = 50  # steps between loss lines


def pad_captions(token_lists: Sequence[Sequence[int]], append_eos: bool = True):
    """Right-pad token lists into (N, L) with EOS filler (any valid id: padded positions are masked out of the loss
    and, being after the caption, never attended to by it) and return the real lengths."""
    seqs = [list(t) + ([EOS_ID] if append_eos else []) for t in token_lists]
    assert all(len(s) > 0 for s in seqs), "every caption needs at least one token"
    L = max(len(s) for s in seqs)
    tokens = torch.full((len(seqs), L), EOS_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return tokens, torch.tensor([len(s) for s in seqs], dtype=torch.long)


def lr_at(step: int, total: int, cfg: MapperTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def freeze(module: torch.nn.Module):
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()


def train_mapper(model: ClipCap, embeds: torch.Tensor, token_lists: Sequence[Sequence[int]],
                 cfg: MapperTrainConfig, log: Callable[[str], None] = print) -> List[float]:
    """Train model.clip_project only. embeds (N, D) are CLIP embeddings (raw; normalised inside if the config says).
    Returns the per-step losses."""
    assert embeds.shape[0] == len(token_lists), "one caption per embedding"
    freeze(model.visual)
    freeze(model.gpt)
    model.clip_project.train()
    for p in model.clip_project.parameters():
        p.requires_grad_(True)
    tokens, lengths = pad_captions(token_lists)
    opt = torch.optim.AdamW(model.clip_project.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    N = embeds.shape[0]
    steps_per_epoch = max(1, N // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    losses, step, t0 = [], 0, time.time()
    for epoch in range(cfg.epochs):
        order = torch.randperm(N, generator=g)
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            L = int(lengths[idx].max())
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, cfg)
            loss = model.caption_loss(embeds[idx], tokens[idx, :L], lengths[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss))
            step += 1
            if step % cfg.log_every == 0 or step == total:
                log(f"mapper step {step}/{total} epoch {epoch + 1} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    return losses
