"""The one model file: shapes, the KV cache, the search semantics, and named errors for bad checkpoints."""

import math

import pytest
import torch

from model.model import (EOS_ID, PERIOD_ID, CheckpointError, ClipCap, ClipCapConfig, GPT2Config, MapperConfig,
                         VisionConfig, beam_search, greedy_search, load_checkpoint, save_checkpoint, torch_step)

TINY = ClipCapConfig(
    vision=VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=2, output_dim=24),
    gpt2=GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=2),
    mapper=MapperConfig(type="mlp", prefix_length=3),
)


def tiny(mapper="mlp", seed=0):
    torch.manual_seed(seed)
    cfg = ClipCapConfig(TINY.vision, TINY.gpt2, MapperConfig(type=mapper, prefix_length=3, clip_length=2,
                                                              num_layers=2, num_heads=4))
    return ClipCap(cfg).eval()


def test_shapes_and_names():
    m = tiny("transformer")
    emb = m.encode_image(torch.randn(2, 3, 32, 32))
    assert emb.shape == (2, 24)
    assert m.prefix(emb).shape == (2, 3, 32)
    keys = set(m.state_dict())
    # names of the published checkpoints: OpenAI CLIP, ClipCap's mapper, HF GPT-2
    for k in ("visual.conv1.weight", "visual.class_embedding", "visual.transformer.resblocks.0.attn.in_proj_weight",
              "visual.transformer.resblocks.1.mlp.c_proj.weight", "visual.proj", "clip_project.prefix_const",
              "clip_project.transformer.layers.1.attn.to_keys_values.weight", "clip_project.linear.weight",
              "gpt.transformer.wte.weight", "gpt.transformer.h.1.attn.c_attn.weight", "gpt.transformer.ln_f.bias"):
        assert k in keys, k
    assert "clip_project.transformer.layers.0.attn.to_queries.bias" not in keys  # no q/kv bias, as the reference
    assert m.state_dict()["gpt.transformer.h.0.attn.c_attn.weight"].shape == (32, 96)  # Conv1D is [in, out]


def test_mlp_mapper_sizes_follow_clipcap():
    m = ClipCap(ClipCapConfig(vision=TINY.vision, gpt2=GPT2Config(n_positions=64, n_embd=768, n_layer=1, n_head=12),
                              mapper=MapperConfig(prefix_length=10)))
    sd = m.state_dict()
    assert sd["clip_project.model.0.weight"].shape == (10 * 768 // 2, 24)
    assert sd["clip_project.model.2.weight"].shape == (10 * 768, 10 * 768 // 2)


def test_kv_cache_matches_full_forward():
    m = tiny()
    prefix = m.prefix(m.encode_image(torch.randn(1, 3, 32, 32))).detach()
    ids = torch.tensor([[11, 22, 33, 44]])
    with torch.no_grad():
        full, _ = m.gpt(torch.cat([prefix, m.gpt.transformer.wte(ids)], 1))
    step = torch_step(m.gpt)
    logits, past = step(torch.zeros(1, 0, dtype=torch.long), prefix, torch.ones(1, 3, dtype=torch.long), None)
    assert torch.allclose(logits, full[:, 2], atol=1e-5)
    for i in range(ids.shape[1]):
        logits, past = step(ids[:, i : i + 1], prefix.new_zeros(1, 0, 32), torch.ones(1, 4 + i, dtype=torch.long), past)
        assert torch.allclose(logits, full[:, 3 + i], atol=1e-5)


def test_attention_mask_hides_positions():
    m = tiny()
    x = torch.randn(1, 5, 32)
    with torch.no_grad():
        a, _ = m.gpt(x, attention_mask=torch.tensor([[1, 1, 1, 1, 1]]))
        b, _ = m.gpt(x, attention_mask=torch.tensor([[0, 1, 1, 1, 1]]))
        c, _ = m.gpt(x[:, 1:])
    assert not torch.allclose(a[:, -1], b[:, -1])
    # masking position 0 equals dropping it, up to the position table offset; compare relative changes instead
    assert torch.isfinite(b).all() and c.shape == (1, 4, 50257)


class ScriptedLM:
    """A fake decoder step whose next-token log-probs are a fixed function of the last token: the search rules can be
    checked by hand. table[last] = {token: prob}; the prefill acts as last = -1."""

    def __init__(self, table, vocab=50257):
        self.table, self.vocab, self.calls = table, vocab, 0

    def __call__(self, ids, embeds, mask, past):
        self.calls += 1
        B = embeds.shape[0]
        last = [-1] * B if ids.shape[1] == 0 else ids[:, -1].tolist()
        logits = torch.full((B, self.vocab), -1e4)
        for b, t in enumerate(last):
            for tok, p in self.table.get(t, {EOS_ID: 1.0}).items():
                logits[b, tok] = math.log(p)
        n = (past[0][0].shape[2] if past else 0) + embeds.shape[1] + ids.shape[1]
        kv = torch.zeros(B, 1, n, 1)
        return logits, [(kv, kv)]


def test_greedy_stops_at_period_and_keeps_it():
    lm = ScriptedLM({-1: {5: 0.6, 6: 0.4}, 5: {7: 0.9, PERIOD_ID: 0.1}, 7: {PERIOD_ID: 1.0}})
    g = greedy_search(lm, torch.zeros(1, 2, 4), max_tokens=10)
    assert g.token_ids == [5, 7, PERIOD_ID]
    assert g.logprobs == pytest.approx([math.log(0.6), math.log(0.9), 0.0], abs=1e-6)


def test_greedy_drops_eos_and_respects_max_tokens():
    assert greedy_search(ScriptedLM({-1: {5: 1.0}, 5: {EOS_ID: 1.0}}), torch.zeros(1, 2, 4)).token_ids == [5]
    loop = ScriptedLM({-1: {5: 1.0}, 5: {5: 1.0}})
    assert greedy_search(loop, torch.zeros(1, 2, 4), max_tokens=4).token_ids == [5, 5, 5, 5]


def test_greedy_ties_go_to_lower_id():
    assert greedy_search(ScriptedLM({-1: {9: 0.5, 8: 0.5}, 8: {PERIOD_ID: 1}}), torch.zeros(1, 1, 4)).token_ids[0] == 8


def test_beam_prefers_better_normalised_sequence():
    # greedy takes 5 (0.55) then is forced into a poor continuation; beam finds 6 -> 7 -> "."
    table = {-1: {5: 0.55, 6: 0.45}, 5: {20: 0.3, 21: 0.3, 22: 0.4}, 22: {PERIOD_ID: 1.0}, 20: {PERIOD_ID: 1.0},
             21: {PERIOD_ID: 1.0}, 6: {7: 1.0}, 7: {PERIOD_ID: 1.0}}
    assert greedy_search(ScriptedLM(table), torch.zeros(1, 2, 4)).token_ids == [5, 22, PERIOD_ID]
    lm = ScriptedLM(table)
    b = beam_search(lm, torch.zeros(1, 2, 4), beams=3, max_tokens=10)
    assert b.token_ids == [6, 7, PERIOD_ID]
    assert b.score == pytest.approx(math.log(0.45) / 3, abs=1e-6)
    assert lm.calls == 3  # prefill (token 1) + 2 steps (tokens 2, 3): all beams advance in one batched call


def test_beam_length_normalisation_keeps_stopped_beams():
    # a short finished caption (".", avg log 0.5) against a long one whose average is better
    table = {-1: {PERIOD_ID: 0.5, 30: 0.5}, 30: {31: 1.0}, 31: {32: 1.0}, 32: {PERIOD_ID: 1.0}}
    b = beam_search(ScriptedLM(table), torch.zeros(1, 2, 4), beams=2, max_tokens=10)
    assert b.token_ids == [30, 31, 32, PERIOD_ID]
    # with max_tokens 2 the long one is cut at length 2 (avg log(0.5)/2), which beats "." alone (log 0.5)
    cut = beam_search(ScriptedLM(table), torch.zeros(1, 2, 4), beams=2, max_tokens=2)
    assert cut.token_ids == [30, 31]


def test_checkpoint_roundtrip(tmp_path):
    m = tiny()
    p = tmp_path / "m.pt"
    save_checkpoint(m, str(p))
    m2 = load_checkpoint(str(p))
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(m.encode_image(x), m2.encode_image(x))


def test_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(str(bad))
    m = tiny()
    sd = m.state_dict()
    sd.pop("visual.proj")
    sd["gpt.transformer.wte.weight"] = torch.zeros(10, 32)
    sd["extra.thing"] = torch.zeros(1)
    torch.save({"config": m.cfg.to_dict(), "state_dict": sd}, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(str(tmp_path / "mismatch.pt"))
    msg = str(e.value)
    assert "missing (1): visual.proj" in msg
    assert "unexpected (1): extra.thing" in msg
    assert "gpt.transformer.wte.weight: checkpoint (10, 32) vs model (50257, 32)" in msg


def test_unknown_mapper_type_is_named():
    with pytest.raises(ValueError, match="unknown mapper type 'conv'"):
        ClipCap(ClipCapConfig(TINY.vision, TINY.gpt2, MapperConfig(type="conv")))
