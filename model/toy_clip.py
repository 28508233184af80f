"""
The toy world learns CLIP too: a tiny text tower trained against the toy vision tower, and the calibration of the two
things it is for (docs/pack-format.md, "CLIP scores: gating and re-ranking").

  1. train_text_tower: the vision tower stays frozen (the mapper and golden.json depend on it); the text tower (the
     real CLIP vocabulary and tokenizer, so the extension runs the same code as for a real pack) learns CLIP's
     symmetric InfoNCE against it. The toy world has only len(ALL_CAPTIONS) distinct captions, so a batch is every
     caption once, each with one random training image of it: in-batch negatives with no duplicate caption (a
     duplicate would be a false negative), and the image->text side is the softmax over all distinct captions.
  2. gate_threshold: a low quantile of the clipScores of greedy captions on in-distribution images.
  3. choose_rerank_weight: exact match of re-ranked beams for a grid of weights, on a split the weight is not
     reported on.
"""

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .model import ClipCap, ClipCapConfig, Generated, TextConfig, clip_score, pad_text_ids, rerank

# Width 32 keeps the tower small (the 49408 x 32 token table is most of its ~6.5 MB fp32); output_dim is the toy
# vision tower's, so both embed into the same joint space.
TOY_TEXT = TextConfig(width=32, layers=2, heads=2, output_dim=64)
CLIP_SCORE_W = 2.5  # CLIPScore's w
RERANK_WEIGHTS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)  # the grid choose_rerank_weight measures


def with_text_tower(model: ClipCap, text: TextConfig = TOY_TEXT, seed: int = 0) -> ClipCap:
    """A copy of `model` with a freshly initialised text tower (any text tower it had is dropped)."""
    cfg = model.cfg
    torch.manual_seed(seed)
    new = ClipCap(ClipCapConfig(vision=cfg.vision, gpt2=cfg.gpt2, mapper=cfg.mapper,
                                normalize_prefix=cfg.normalize_prefix, text=text))
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("text.")}
    missing, unexpected = new.load_state_dict(old, strict=False)
    assert not unexpected and all(k.startswith("text.") for k in missing), f"unexpected {unexpected}, missing {missing}"
    return new.eval()


def text_ids(tok, texts: Sequence[str]) -> List[List[int]]:
    """CLIP token rows of the texts as the engine scores them: trimmed (docs/pack-format.md, "CLIP scores")."""
    return [tok.encode(t.strip()) for t in texts]


def encode_texts(model: ClipCap, tok, texts: Sequence[str], batch: int = 256) -> torch.Tensor:
    """(k, D) text embeddings, not normalised."""
    rows = text_ids(tok, texts)
    with torch.no_grad():
        return torch.cat([model.encode_text(pad_text_ids(rows[i : i + batch])) for i in range(0, len(rows), batch)])


def clip_scores(model: ClipCap, tok, image_embeds: torch.Tensor, texts: Sequence[str]) -> np.ndarray:
    """clipScore of each (image, text) pair; an empty text is not scored (0), as the engine does."""
    out = np.zeros(len(texts))
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if keep:
        emb = encode_texts(model, tok, [texts[i] for i in keep])
        out[keep] = clip_score(image_embeds[keep], emb, w=CLIP_SCORE_W).numpy()
    return out


@dataclass
class TextTrainConfig:
    steps: int = 400  # each step is one batch of every distinct caption
    lr: float = 3e-3  # AdamW, constant after warmup: the run is short
    warmup_steps: int = 20  # linear warmup
    weight_decay: float = 0.0  # none: most of the token table is never used and should stay as initialised
    seed: int = 0  # image choice per caption, and the tower's initialisation
    align: float = 1.0  # weight of 1 - cos(image, its caption): pulls each caption onto its images' centre, so that
    # in-distribution clipScores are high and tight and an image between clusters (out of distribution) scores low


def train_text_tower(model: ClipCap, image_embeds: torch.Tensor, captions: Sequence[str], tok,
                     cfg: TextTrainConfig = TextTrainConfig(), log: Callable[[str], None] = print) -> Dict:
    """Train model.text (and its logit_scale) with symmetric InfoNCE against frozen image embeddings.
    image_embeds (N, D) and captions (N) are the training pairs. Returns training figures."""
    assert model.text is not None, "add a text tower first (with_text_tower)"
    assert image_embeds.shape[0] == len(captions), "one caption per image"
    t0 = time.time()
    distinct = sorted(set(captions))
    by_caption = [torch.tensor([i for i, c in enumerate(captions) if c == d]) for d in distinct]
    ids = pad_text_ids(text_ids(tok, distinct))  # (C, n): the whole caption set, every step
    img = F.normalize(image_embeds.float(), dim=-1)
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.text.parameters())
    for p in params:
        p.requires_grad_(True)
    model.text.train()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    target = torch.arange(len(distinct))
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
        pick = torch.stack([rows[torch.randint(len(rows), (1,), generator=g)][0] for rows in by_caption])
        txt = F.normalize(model.encode_text(ids), dim=-1)  # (C, D)
        logits = model.text.logit_scale.exp() * img[pick] @ txt.T  # (C images, C texts)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        loss = loss + cfg.align * (1 - (img[pick] * txt).sum(-1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.text.logit_scale.clamp_(0, np.log(100.0))  # CLIP's cap on the temperature
        if (step + 1) % 100 == 0 or step == cfg.steps - 1:
            log(f"text step {step + 1}/{cfg.steps} loss {loss.item():.4f} scale {model.text.logit_scale.exp().item():.1f}")
    for p in params:
        p.requires_grad_(False)
    model.eval()
    # Retrieval accuracy over all training images: the nearest caption is the true one.
    txt = F.normalize(encode_texts(model, tok, distinct), dim=-1)
    truth = torch.tensor([distinct.index(c) for c in captions])
    acc = float(((img @ txt.T).argmax(-1) == truth).float().mean())
    log(f"text tower: image->caption retrieval accuracy {acc:.4f} on {len(captions)} training images, "
        f"{time.time() - t0:.0f}s")
    return {"loss": float(loss), "logit_scale": float(model.text.logit_scale.exp()), "retrieval_accuracy": acc,
            "steps": cfg.steps, "seconds": round(time.time() - t0, 1)}


def gate_threshold(scores: Sequence[float], quantile: float) -> float:
    """The threshold that keeps at least 1 - quantile of `scores` at or above it (a caption is uncertain below)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    return float(s[int(np.floor(quantile * len(s)))])


def share_below(scores: Sequence[float], threshold: float) -> float:
    s = np.asarray(scores, dtype=np.float64)
    return float((s < threshold).mean()) if len(s) else 0.0


def beam_clip_scores(model: ClipCap, tok, gpt_tok, image_embeds: torch.Tensor,
                     results: Sequence[Generated]) -> List[List[float]]:
    """clipScore of every final beam of each image."""
    texts = [gpt_tok.decode(b.token_ids) for r in results for b in r.beams]
    owner = [i for i, r in enumerate(results) for _ in r.beams]
    flat = clip_scores(model, tok, image_embeds[owner], texts)
    out, k = [], 0
    for r in results:
        out.append([float(x) for x in flat[k : k + len(r.beams)]])
        k += len(r.beams)
    return out


def reranked_exact_match(results: Sequence[Generated], scores: Sequence[Sequence[float]], truth: Sequence[str],
                         gpt_tok, weight: float) -> float:
    hits = 0
    for r, s, t in zip(results, scores, truth):
        best = r.beams[rerank(r.beams, s, weight)]
        hits += gpt_tok.decode(best.token_ids) == t
    return hits / len(truth)


def choose_rerank_weight(results, scores, truth, gpt_tok, weights: Sequence[float] = RERANK_WEIGHTS):
    """(best weight, {weight: exact match}); ties go to the smaller weight (closer to plain beam search)."""
    table = {w: reranked_exact_match(results, scores, truth, gpt_tok, w) for w in weights}
    best = max(weights, key=lambda w: (table[w], -w))
    return best, table
