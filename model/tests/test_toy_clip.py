"""toy_clip: the text tower learns the joint space from frozen image embeddings, and the gate and re-ranking weight
are chosen as documented. Tiny sizes: the real CLIP tokenizer and vocabulary, a 16-wide tower."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import toy_clip as tc
from model.clip_tokenizer import load_clip_tokenizer
from model.model import Beam, ClipCap, ClipCapConfig, Generated, GPT2Config, MapperConfig, TextConfig, VisionConfig

TINY = ClipCapConfig(vision=VisionConfig(image_size=16, patch_size=8, width=16, layers=1, heads=2, output_dim=8),
                     gpt2=GPT2Config(n_positions=16, n_embd=8, n_layer=1, n_head=2),
                     mapper=MapperConfig(type="mlp", prefix_length=2))
TINY_TEXT = TextConfig(width=16, layers=1, heads=2, output_dim=8)
CAPTIONS = ["a red circle on a white background.", "a blue square on a black background.",
            "a green star on a grey background.", "a red square on a white background."]


@pytest.fixture(scope="module")
def tok():
    return load_clip_tokenizer()


def _pairs(n_per: int, seed: int = 0):
    """Image embeddings in clusters, one cluster per caption, far from the origin as a real tower's are."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(CAPTIONS), 8, generator=g) * 3
    emb = torch.cat([c + 0.3 * torch.randn(n_per, 8, generator=g) for c in centres])
    return emb, [c for c in CAPTIONS for _ in range(n_per)], centres


def test_with_text_tower_keeps_every_other_weight() -> None:
    torch.manual_seed(0)
    base = ClipCap(TINY)
    m = tc.with_text_tower(base, TINY_TEXT, seed=1)
    assert m.text is not None and m.cfg.text == TINY_TEXT
    for k, v in base.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k
    again = tc.with_text_tower(m, TINY_TEXT, seed=1)  # a tower already there is replaced, deterministically
    assert all(torch.equal(again.state_dict()[k], v) for k, v in m.state_dict().items())


def test_text_tower_learns_the_joint_space(tok) -> None:
    model = tc.with_text_tower(ClipCap(TINY), TINY_TEXT, seed=0)
    emb, caps, centres = _pairs(12)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("text.")}
    before = tc.clip_scores(model, tok, centres, CAPTIONS)
    figures = tc.train_text_tower(model, emb, caps, tok, tc.TextTrainConfig(steps=120, lr=1e-2), log=lambda m: None)
    assert figures["retrieval_accuracy"] == 1.0, figures
    assert all(torch.equal(model.state_dict()[k], v) for k, v in frozen.items()), "only the text tower may train"
    # Each cluster scores its own caption highest, and near CLIPScore's top (w = 2.5): the alignment term.
    scores = np.stack([tc.clip_scores(model, tok, centres[i].expand(len(CAPTIONS), -1), CAPTIONS)
                       for i in range(len(CAPTIONS))])
    assert (scores.argmax(1) == np.arange(len(CAPTIONS))).all(), scores
    assert scores.diagonal().min() > 2.2 and scores.diagonal().min() > before.max(), (scores, before)


def test_clip_scores_skip_empty_text(tok) -> None:
    model = tc.with_text_tower(ClipCap(TINY), TINY_TEXT, seed=0)
    # The image is the empty text's own embedding: scored, it would get the top score, 2.5.
    emb = model.encode_text(torch.tensor([tok.encode("")])).detach().expand(3, -1)
    s = tc.clip_scores(model, tok, emb, ["a red circle.", "  ", " a red circle. "])
    assert s[1] == 0.0
    assert s[0] == pytest.approx(s[2], abs=1e-6)  # scored trimmed, as the engine does (float32 rows)


def test_gate_threshold_keeps_the_share_asked_for() -> None:
    scores = np.linspace(1.0, 2.0, 100)
    th = tc.gate_threshold(scores, 0.03)
    assert th == scores[3]
    assert tc.share_below(scores, th) == 0.03
    assert tc.share_below(np.array([0.5, 1.0, 1.5]), 1.0) == pytest.approx(1 / 3)
    assert tc.gate_threshold(scores, 0.0) == scores[0]  # quantile 0 gates nothing


class _Tok:
    """GPT-2 decode stand-in: the beams below are made of these ids."""

    words = {1: "right", 2: "wrong", 3: "worse"}

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


def test_choose_rerank_weight() -> None:
    # Image 0: beam search prefers "wrong" by 0.2 a token; CLIP prefers "right" by 0.5. Image 1: beam search is right.
    results = [Generated([2], [], -0.1, [Beam([2], -0.1, 1), Beam([1], -0.3, 1)]),
               Generated([1], [], -0.1, [Beam([1], -0.1, 1), Beam([3], -0.2, 1)])]
    scores = [[1.0, 1.5], [1.0, 2.0]]
    truth = ["right", "right"]
    weights = (0.0, 0.2, 0.3, 0.5, 1.0)
    # rank = score / length + w * clipScore. Image 0 turns right for w > 0.4, image 1 turns wrong for w > 0.1: so 0
    # and w > 0.4 both get one of two, and the tie goes to 0.
    best, table = tc.choose_rerank_weight(results, scores, truth, _Tok(), weights=weights)
    assert table == {0.0: 0.5, 0.2: 0.0, 0.3: 0.0, 0.5: 0.5, 1.0: 0.5} and best == 0.0
    scores = [[1.0, 1.5], [1.0, 1.0]]  # now image 1's wrong beam has no CLIP advantage: w > 0.4 gets both
    best, table = tc.choose_rerank_weight(results, scores, truth, _Tok(), weights=weights)
    assert table == {0.0: 0.5, 0.2: 0.5, 0.3: 0.5, 0.5: 1.0, 1.0: 1.0} and best == 0.5
