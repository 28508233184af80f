"""Mapper training on the toy world: GPT-2 frozen, gradient through it into the mapper, loss on caption tokens."""

import os

import torch

from model import toy_world as tw
from model.model import (IGNORE_INDEX, ClipCap, ClipCapConfig, GPT2Config, MapperConfig, MLPMapper, VisionConfig,
                         load_checkpoint)
from model.tokenizer import load_gpt2_tokenizer
from model.toy import pixels
from model.train import MapperTrainConfig, pad_captions, train_mapper

CFG = ClipCapConfig(
    vision=VisionConfig(image_size=64, patch_size=16, width=32, layers=1, heads=2, output_dim=32),
    gpt2=GPT2Config(n_positions=32, n_embd=32, n_layer=1, n_head=2),
    mapper=MapperConfig(type="mlp", prefix_length=2),
)


def test_pad_captions_appends_eos_and_counts():
    tokens, lengths = pad_captions([[1, 2, 3], [4]])
    assert tokens.tolist() == [[1, 2, 3, 50256], [4, 50256, 50256, 50256]]
    assert lengths.tolist() == [4, 2]


def test_loss_ignores_padding_and_never_uses_a_real_id_for_it():
    torch.manual_seed(0)
    m = ClipCap(CFG).eval()
    emb = torch.randn(2, 32)
    tokens, lengths = pad_captions([[64, 2266, 9197], [64]])
    base = m.caption_loss(emb, tokens, lengths)
    changed = tokens.clone()
    changed[1, 2:] = 123  # only padded positions change
    assert torch.allclose(base, m.caption_loss(emb, changed, lengths))
    assert IGNORE_INDEX == -100


def test_loss_falls_and_only_the_mapper_moves(toy_pack):
    """Retrain the toy model's mapper from scratch on fresh toy images, with its pre-trained GPT-2 and vision frozen."""
    torch.manual_seed(0)
    tok = load_gpt2_tokenizer()
    m = load_checkpoint(os.path.join(os.path.dirname(toy_pack), ".build", "toy", "model.pt"))
    m.clip_project = MLPMapper(m.cfg.vision.output_dim, m.cfg.gpt2.n_embd, m.cfg.mapper.prefix_length)
    specs = tw.sample_specs(320, seed=3, split="train-test")
    with torch.no_grad():
        emb = m.encode_image(pixels([tw.render(s) for s in specs]))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    losses = train_mapper(m, emb, [tok.encode(tw.caption(s)) for s in specs],
                          MapperTrainConfig(epochs=3, batch_size=32, lr=2e-3, warmup_steps=5, log_every=1000),
                          log=lambda s: None)
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    print(f"\nmapper loss {first:.3f} -> {last:.3f} over {len(losses)} steps")
    assert last < 0.5 * first
    after = m.state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved and all(k.startswith("clip_project.") for k in moved), sorted(moved)[:5]
