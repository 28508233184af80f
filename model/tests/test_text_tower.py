"""CLIP's text tower: names, causal pooling at <|endoftext|>, CLIPScore, beam re-ranking, the published layouts'
loaders and the exported text.onnx (tiny sizes throughout)."""

import math

import pytest
import torch

from model.model import (Beam, ClipCap, ClipCapConfig, GPT2Config, MapperConfig, TextConfig, VisionConfig, beam_search,
                         clip_score, load_checkpoint, pad_text_ids, rerank, save_checkpoint, torch_step)

BOS, EOT = 49406, 49407
TINY_TEXT = TextConfig(vocab_size=49408, context_length=77, width=32, layers=2, heads=2, output_dim=24)
TINY = ClipCapConfig(
    vision=VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=2, output_dim=24),
    gpt2=GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=2),
    mapper=MapperConfig(type="mlp", prefix_length=3),
    text=TINY_TEXT,
)


def tiny(seed=0, cfg=TINY):
    torch.manual_seed(seed)
    m = ClipCap(cfg).eval()
    with torch.no_grad():  # wider than OpenAI's init, so that every token and position visibly moves the embedding
        m.text.token_embedding.weight.normal_(0.0, 1.0)
        m.text.positional_embedding.normal_(0.0, 0.5)
    return m


def test_shapes_and_openai_names():
    m = tiny()
    sd = m.state_dict()
    for k in ("text.token_embedding.weight", "text.positional_embedding", "text.transformer.resblocks.1.attn.in_proj_weight",
              "text.transformer.resblocks.0.mlp.c_fc.weight", "text.ln_final.bias", "text.text_projection",
              "text.logit_scale"):
        assert k in sd, k
    assert sd["text.text_projection"].shape == (32, 24)  # [width, output_dim], used as x @ text_projection
    assert sd["text.positional_embedding"].shape == (77, 32)
    ids = pad_text_ids([[BOS, 320, 1125, EOT], [BOS, EOT]])
    assert ids.tolist() == [[BOS, 320, 1125, EOT], [BOS, EOT, 0, 0]]
    assert m.encode_text(ids).shape == (2, 24)


def test_no_text_tower_by_default_and_old_configs_load(tmp_path):
    cfg = ClipCapConfig(TINY.vision, TINY.gpt2, TINY.mapper)
    assert ClipCap(cfg).text is None
    d = cfg.to_dict()
    d.pop("text")  # a checkpoint written before the text tower existed
    assert ClipCapConfig.from_dict(d) == cfg
    assert ClipCapConfig.from_dict(TINY.to_dict()) == TINY
    m = tiny()
    save_checkpoint(m, str(tmp_path / "m.pt"))
    back = load_checkpoint(str(tmp_path / "m.pt"))
    ids = torch.tensor([[BOS, 320, EOT]])
    assert torch.equal(back.encode_text(ids), m.encode_text(ids))


def test_mismatched_output_dims_are_refused():
    bad = ClipCapConfig(TINY.vision, TINY.gpt2, TINY.mapper, text=TextConfig(width=32, layers=1, heads=2, output_dim=8))
    with pytest.raises(AssertionError, match="output_dim"):
        ClipCap(bad)


@torch.no_grad()
def test_causal_pooling_at_eot_ignores_what_follows():
    m = tiny()
    row = [BOS, 320, 1125, 539, 320, 1929, EOT]
    alone = m.encode_text(torch.tensor([row]))
    padded = m.encode_text(pad_text_ids([row, row + [0] * 5, [BOS, 1929, EOT]]))
    to77 = m.encode_text(torch.tensor([row + [0] * (77 - len(row))]))
    assert torch.allclose(padded[0], alone[0], atol=1e-5) and torch.allclose(padded[1], alone[0], atol=1e-5)
    assert torch.allclose(to77, alone, atol=1e-5)
    # anything after the eot (smaller than it) changes nothing; a token before it does
    after = m.encode_text(torch.tensor([row + [5, 49000, 7]]))
    assert torch.allclose(after, alone, atol=1e-5)
    before = m.encode_text(torch.tensor([[BOS, 320, 1125, 539, 320, 1930, EOT]]))
    assert (before - alone).abs().max() > 1e-2
    # pooled at the eot's position, not the last one: the same ids moved one place later give another embedding
    assert (m.encode_text(torch.tensor([[BOS, BOS] + row[1:]])) - alone).abs().max() > 1e-2


def test_too_long_text_is_refused():
    with pytest.raises(AssertionError, match="context_length"):
        tiny().encode_text(torch.zeros(1, 78, dtype=torch.long))


def test_clip_score_is_clipscore_in_float64():
    img = torch.tensor([3.0, 4.0, 0.0])
    txt = torch.tensor([[3.0, 4.0, 0.0], [4.0, -3.0, 0.0], [-3.0, -4.0, 0.0], [6.0, 8.0, 5.0]])
    s = clip_score(img, txt)
    assert s.dtype == torch.float64
    assert s.tolist() == pytest.approx([2.5, 0.0, 0.0, 2.5 * 50 / (5 * math.sqrt(125))], abs=1e-15)
    assert clip_score(img * 7, txt, w=1.0).tolist() == pytest.approx((s / 2.5).tolist(), abs=1e-15)  # norms cancel
    assert clip_score(torch.zeros(3), txt[:1]).tolist() == [0.0]  # a zero vector has no direction
    f32 = torch.randn(2, 512)
    assert torch.equal(clip_score(f32[0], f32[1:]), clip_score(f32[0].double(), f32[1:].double()))


def test_rerank_rules():
    # binary fractions, so every sum below is exact and the ties are real ties
    beams = [Beam([1, 13], -1.0, 2), Beam([2, 13], -1.5, 2), Beam([3, 4, 13], -2.25, 3)]  # -0.5, -0.75, -0.75 a token
    assert rerank(beams, [0.0, 2.0, 2.0], 0.0) == 0  # weight 0: beam search's own answer
    assert rerank(beams, [0.25, 0.5, 0.5], 1.0) == 0  # -0.25 three times: the first
    assert rerank(beams, [0.25, 0.75, 0.75], 1.0) == 1  # 0.0 twice: the earlier of the two
    assert rerank(beams, [0.25, 0.75, 1.0], 1.0) == 2
    assert rerank(beams, [0.5, 1.0, 0.5], 0.5) == 0  # -0.25, -0.25, -0.5: the weight scales the clipScore
    assert rerank(beams, [0.0, 0.0, 1.0], 0.5) == 2  # -0.5, -0.75, -0.25
    assert rerank([Beam([5], -3.0, 1)], [0.0], 10.0) == 0
    with pytest.raises(AssertionError):
        rerank(beams, [0.1], 1.0)


def test_beam_search_returns_every_final_beam_best_first():
    m = tiny(3)
    prefix = m.prefix(m.encode_image(torch.randn(1, 3, 32, 32))).detach()
    g = beam_search(torch_step(m.gpt), prefix, beams=4, max_tokens=6)
    assert len(g.beams) == 4
    assert g.beams[0].token_ids == g.token_ids and g.beams[0].score / g.beams[0].length == g.score
    norms = [b.score / b.length for b in g.beams]
    assert norms == sorted(norms, reverse=True)
    assert all(1 <= b.length <= 6 and len(b.token_ids) <= b.length for b in g.beams)


# -----------------------------------------------------------------------------
# Published layouts: OpenAI's archive (and open_clip's safetensors) and Hugging Face CLIP give the same tower

OPENAI_SIZES = ClipCapConfig(  # widths of 64: the loaders infer heads = width // 64, as OpenAI's build_model does
    vision=VisionConfig(image_size=32, patch_size=8, width=64, layers=1, heads=1, output_dim=24),
    gpt2=GPT2Config(n_positions=64, n_embd=64, n_layer=1, n_head=1),
    mapper=MapperConfig(type="mlp", prefix_length=2),
    text=TextConfig(width=64, layers=2, heads=1, output_dim=24),
)


def _to_hf(openai: dict) -> dict:
    """OpenAI's CLIP names to transformers' CLIPModel names, written out here (not with model/official.py): q, k and
    v split out of in_proj, projections transposed to Linear's [out, in]."""
    hf = {}
    for tower, prefix, top in (("visual.", "vision_model.", {"class_embedding": "embeddings.class_embedding",
                                                            "conv1.weight": "embeddings.patch_embedding.weight",
                                                            "positional_embedding": "embeddings.position_embedding.weight",
                                                            "ln_pre.weight": "pre_layrnorm.weight",
                                                            "ln_pre.bias": "pre_layrnorm.bias",
                                                            "ln_post.weight": "post_layernorm.weight",
                                                            "ln_post.bias": "post_layernorm.bias"}),
                               ("", "text_model.", {"token_embedding.weight": "embeddings.token_embedding.weight",
                                                    "positional_embedding": "embeddings.position_embedding.weight",
                                                    "ln_final.weight": "final_layer_norm.weight",
                                                    "ln_final.bias": "final_layer_norm.bias"})):
        for k, v in openai.items():
            if not k.startswith(tower) or (tower == "" and k.startswith("visual.")):
                continue
            name = k[len(tower):]
            if name in top:
                hf[prefix + top[name]] = v
            elif name.startswith("transformer.resblocks."):
                _, _, n, *rest = name.split(".")
                rest = ".".join(rest)
                p = f"{prefix}encoder.layers.{n}."
                if rest.startswith("attn.in_proj_"):
                    kind = rest.split("_")[-1]
                    for letter, part in zip("qkv", v.chunk(3, dim=0)):
                        hf[f"{p}self_attn.{letter}_proj.{kind}"] = part
                else:
                    rest = (rest.replace("ln_1", "layer_norm1").replace("ln_2", "layer_norm2")
                            .replace("mlp.c_fc", "mlp.fc1").replace("mlp.c_proj", "mlp.fc2")
                            .replace("attn.out_proj", "self_attn.out_proj"))
                    hf[p + rest] = v
    hf["visual_projection.weight"] = openai["visual.proj"].t()
    hf["text_projection.weight"] = openai["text_projection"].t()
    hf["logit_scale"] = openai["logit_scale"]
    return hf


def test_openai_and_hf_layouts_load_to_identical_embeddings(tmp_path):
    import json

    from model.official import build_official, read_state_dict
    from model.published import write_published
    from model.safetensors_io import save_file
    import official_specs as S

    m = tiny(5, OPENAI_SIZES)
    write_published(OPENAI_SIZES, m.state_dict(), str(tmp_path))
    openai = read_state_dict(str(tmp_path / "clip.pt"))
    assert {k for k in openai if not k.startswith("visual.")} == set(S.openai_vit(
        image=32, patch=8, width=64, layers=1, embed_dim=24, text_width=64, text_layers=2)) - set(S.openai_vit(
            image=32, patch=8, width=64, layers=1, embed_dim=24, text=False))  # the model's tower under OpenAI's names
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    hf = _to_hf({k: v.float() for k, v in openai.items() if k not in ("input_resolution", "context_length", "vocab_size")})
    assert set(hf) == set(S.hf_clip(image=32, patch=8, width=64, layers=1, embed_dim=24, text_width=64,
                                    text_layers=2, position_ids=False))
    save_file(hf, str(hf_dir / "model.safetensors"))
    (hf_dir / "config.json").write_text(json.dumps({
        "vision_config": {"hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "num_attention_heads": 1},
        "text_config": {"hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "num_attention_heads": 1}}))
    clipcap = str(tmp_path / "clipcap.pt")
    models = [build_official(str(p), clipcap, text=True) for p in (tmp_path / "clip.pt", tmp_path / "clip.safetensors",
                                                                   hf_dir)]
    assert all(x.cfg.text == OPENAI_SIZES.text for x in models)
    ids = pad_text_ids([[BOS, 320, 1125, 539, 320, 1929, EOT], [BOS, 1929, EOT]])
    with torch.no_grad():
        embeds = [x.encode_text(ids) for x in models]
        assert torch.equal(embeds[0], embeds[1]) and torch.equal(embeds[0], embeds[2])
        # the archive stores OpenAI's fp16 where OpenAI does, so the source model agrees to fp16 rounding only
        assert torch.allclose(embeds[0], m.encode_text(ids), atol=0.05)
    assert build_official(str(tmp_path / "clip.pt"), clipcap).text is None  # only when asked for


def test_hf_text_tower_refuses_exact_gelu(tmp_path):
    import json

    from model.official import CheckpointError, load_clip_text
    from model.safetensors_io import save_file
    import official_specs as S

    save_file(S.materialize(S.hf_clip(image=32, patch=8, width=64, layers=1, embed_dim=24, text_width=64,
                                      text_layers=1)), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"hidden_act": "gelu"}}))
    with pytest.raises(CheckpointError, match="quick_gelu"):
        load_clip_text(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"num_attention_heads": 4}}))
    assert load_clip_text(str(tmp_path))[0].heads == 4  # the config's heads win over width // 64


# -----------------------------------------------------------------------------
# Export: text.onnx through onnxruntime-node, and the builder's say on the gate and re-ranking


def test_text_onnx_runs_any_length_and_batch(tmp_path):
    import numpy as np
    import onnx

    from model.export import export_fp32_graphs
    from model.ort_node import NodeORT

    m = tiny(7)
    path = export_fp32_graphs(m, str(tmp_path))["text"]
    g = onnx.load(path).graph
    assert [i.name for i in g.input] == ["input_ids"] and [o.name for o in g.output] == ["text_embeds"]
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    rows = [[BOS, 320, 1125, 539, EOT], [BOS, 1929, EOT], [BOS, *range(300, 375), EOT]]  # the last 77 long
    with NodeORT() as ort, torch.no_grad():
        sid = ort.load(path)
        batch = ort.run(sid, {"input_ids": pad_text_ids(rows).numpy()})["text_embeds"]
        assert batch.shape == (3, 24) and batch.dtype == np.float32
        for i, r in enumerate(rows):
            alone = ort.run(sid, {"input_ids": np.array([r], np.int64)})["text_embeds"]
            ref = m.encode_text(torch.tensor([r])).numpy()
            assert np.abs(alone - ref).max() < 1e-5 and np.abs(batch[i] - ref[0]).max() < 1e-5, i
        ort.free(sid)


def test_the_builder_must_say_gate_and_rerank_figures(tmp_path):
    from model.export import ASSUMED_TEXT_MANIFEST, ExportError, export_pack

    m = tiny()
    with pytest.raises(ExportError, match="must give text_manifest"):
        export_pack(m, str(tmp_path / "a"), "a", "a")
    bad = {**ASSUMED_TEXT_MANIFEST, "calibration": {"method": "assumed"}}
    with pytest.raises(ExportError, match="needs a note"):
        export_pack(m, str(tmp_path / "a"), "a", "a", text_manifest=bad)
    with pytest.raises(ExportError, match="gateThreshold"):
        export_pack(m, str(tmp_path / "a"), "a", "a", text_manifest={**ASSUMED_TEXT_MANIFEST, "gateThreshold": 3})
    no_tower = ClipCap(ClipCapConfig(TINY.vision, TINY.gpt2, TINY.mapper))
    with pytest.raises(ExportError, match="no text tower"):
        export_pack(no_tower, str(tmp_path / "b"), "b", "b", text_manifest=ASSUMED_TEXT_MANIFEST)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before writing anything


def test_reduced_precision_text_towers_keep_scores(small_random_pack, tmp_path):
    import json
    import os

    import onnx

    from model.export import ASSUMED_TEXT_MANIFEST, export_pack
    from model.golden import check_parity

    out, _ = small_random_pack
    model = load_checkpoint(os.path.join(os.path.dirname(out), ".build", "small-random", "model.pt"))
    fp32 = json.load(open(os.path.join(out, "pack.json")))
    assert fp32["text"]["dim"] == 48 and fp32["text"]["eot"] == EOT and fp32["text"]["contextLength"] == 77
    assert set(fp32["files"]) >= {"text", "textTokenizer"}
    d = str(tmp_path / "fp16")
    m = export_pack(model, d, "small-fp16", "small-fp16", "fp16", text_manifest=ASSUMED_TEXT_MANIFEST)
    assert m["files"]["text"]["bytes"] < 0.55 * fp32["files"]["text"]["bytes"]
    assert any(n.op_type == "Cast" for n in onnx.load(os.path.join(d, "text.onnx")).graph.node)
    r = check_parity(d, model, golden_dir=out, limit=1)
    assert r["max_text_embeds_diff"] < 1e-2 and r["max_clip_score_diff"] < 1e-2, r


def test_build_pack_text_flag_from_official_format_files(tmp_path):
    """build_pack --text: an OpenAI-format archive with its text tower + a ClipCap MLP checkpoint -> a pack with
    text.onnx, text-tokenizer.json, an "assumed" calibration, and ONNX scores and re-ranking equal to PyTorch's."""
    import json
    import os

    import official_specs as S

    from model.build_pack import main

    vit = S.openai_vit(image=32, patch=8, width=64, layers=1, embed_dim=24, text_width=64, text_layers=2)
    S.write_torchscript(S.materialize(vit, dtype=torch.float16, random=True, seed=4), str(tmp_path / "ViT.pt"))
    ck = S.materialize(S.clipcap_mlp(prefix_length=2, dim_clip=24, n_embd=64, n_layer=1, n_pos=64),
                       dtype=torch.float32, random=True, seed=5)
    with torch.no_grad():  # a wider token table, so logits have clear margins and parity is not decided by rounding
        ck["gpt.transformer.wte.weight"].mul_(30.0)
    torch.save(ck, tmp_path / "coco.pt")
    out = str(tmp_path / "pack")
    report = main(["--clip", str(tmp_path / "ViT.pt"), "--clipcap", str(tmp_path / "coco.pt"), "--out", out,
                   "--precision", "fp32", "--beams", "3", "--max-tokens", "6", "--text"])
    manifest = json.loads(open(os.path.join(out, "pack.json")).read())
    text = manifest["text"]
    assert (text["dim"], text["contextLength"], text["bos"], text["eot"]) == (24, 77, BOS, EOT)
    assert text["calibration"]["method"] == "assumed" and "Hessel" in text["calibration"]["note"]
    assert manifest["files"]["text"]["path"] == "text.onnx"
    assert manifest["files"]["textTokenizer"]["path"] == "text-tokenizer.json"
    golden = json.loads(open(os.path.join(out, "golden.json")).read())
    for e in golden["images"]:
        assert e["clip"]["texts"][0] == e["greedy"]["text"].strip() and len(e["clip"]["texts"]) == 2
        assert [r[0] for r in e["clip"]["inputIds"]] == [BOS, BOS] and len(e["clip"]["clipScores"]) == 2
        assert len(e["beam"]["beams"]) == 3 and e["beam"]["beams"][0]["tokenIds"] == e["beam"]["tokenIds"]
    assert report["count"] == 3 and report["greedy_identical"] == 3 and report["beam_identical"] == 3, report
    assert report["max_text_embeds_diff"] < 1e-5 and report["max_clip_score_diff"] < 1e-5, report
    assert report["rerank_count"] == 3 and report["reranked_identical"] == 3, report
