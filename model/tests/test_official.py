"""Loaders for the officially published weights (model/official.py), tested on
synthetic FULL-SIZE files carrying the official names and shapes (tests/official_specs.py), in the official
container formats: TorchScript archives (OpenAI CLIP), safetensors and pytorch_model.bin (Hugging Face), and
torch.save'd state dicts (ClipCap). Forward passes run on small configurations, except the single OpenAI-vs-HF
ViT-B/32 comparison."""
import pytest
import torch
import torch.nn.functional as F

from model import model as M
from model import official as O
from model.safetensors_io import save_file

import official_specs as S


def _strip(sd, prefix):
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Write each synthetic official file once for the module (cheap constant-filled tensors, fp16 like OpenAI's)."""
    d = tmp_path_factory.mktemp("official")
    out = {}
    specs = {"vit": S.openai_vit(), "rn": S.openai_resnet()}
    for name, spec in specs.items():
        state = S.materialize(spec)
        out[name] = str(d / f"{name}.pt")
        out[name + "_state"] = state
        S.write_torchscript(state, out[name])
    return out


# -----------------------------------------------------------------------------
# OpenAI CLIP TorchScript archives


def test_openai_vit_b32_torchscript_full_size(files):
    cfg, visual = O.load_clip_vision(files["vit"])
    assert (cfg.arch, cfg.image_size, cfg.patch_size, cfg.width, cfg.layers, cfg.heads, cfg.output_dim) == \
        ("vit", 224, 32, 768, 12, 12, 512)
    tower = M.VisionTransformer(cfg)
    M.check_state_dict(tower, _strip(visual, "visual."), what="ViT-B-32.pt")
    tower.load_state_dict(_strip(visual, "visual."))
    src = files["vit_state"]
    for k in ("visual.proj", "visual.transformer.resblocks.11.attn.in_proj_weight", "visual.ln_post.bias"):
        assert visual[k].dtype == torch.float32 and torch.equal(visual[k], src[k].float()), k
    assert not any(k.startswith(("visual.transformer.resblocks.12", "transformer.")) for k in visual)


def test_openai_rn50x4_torchscript_full_size(files):
    cfg, visual = O.load_clip_vision(files["rn"])
    assert (cfg.arch, cfg.image_size, cfg.width, tuple(cfg.resnet_layers), cfg.heads, cfg.output_dim) == \
        ("resnet", 288, 80, (4, 6, 10, 6), 40, 640)
    tower = M.ModifiedResNet(cfg)
    M.check_state_dict(tower, _strip(visual, "visual."), what="RN50x4.pt")
    tower.load_state_dict(_strip(visual, "visual."))
    assert sum(p.numel() for p in tower.parameters()) == 87_137_080  # RN50x4's image tower
    assert visual["visual.layer4.0.downsample.1.num_batches_tracked"].dtype == torch.long


def test_torchscript_archive_is_what_the_loader_reads(files):
    # the fixture is a real TorchScript archive, read the way clip.load reads OpenAI's files
    sd = torch.jit.load(files["vit"], map_location="cpu").state_dict()
    assert "visual.proj" in sd and "input_resolution" in sd and sd["visual.proj"].dtype == torch.float16


def test_openai_missing_and_wrong_shape_are_named(files, tmp_path):
    state = dict(files["vit_state"])
    del state["visual.ln_post.weight"]
    state["visual.transformer.resblocks.3.mlp.c_fc.weight"] = torch.zeros(768, 3072, dtype=torch.float16)  # transposed
    state["visual.extra_head.weight"] = torch.zeros(3)
    cfg, visual = O.openai_vision_config(state), O.openai_clip_visual(state)
    with pytest.raises(M.CheckpointError) as e:
        M.check_state_dict(M.VisionTransformer(cfg), _strip(visual, "visual."), what="ViT-B-32.pt")
    msg = str(e.value)
    assert "ViT-B-32.pt" in msg
    assert "missing (1): ln_post.weight" in msg
    assert "unexpected (1): extra_head.weight" in msg
    assert "transformer.resblocks.3.mlp.c_fc.weight: checkpoint (768, 3072) vs model (3072, 768)" in msg


def test_a_file_of_another_kind_is_refused(tmp_path):
    p = tmp_path / "not_clip.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, p)
    with pytest.raises(M.CheckpointError, match="not an OpenAI CLIP state dict: unexpected keys.*encoder.weight"):
        O.load_clip_vision(str(p))
    with pytest.raises(M.CheckpointError, match="does not exist"):
        O.load_clip_vision(str(tmp_path / "nope.pt"))
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    with pytest.raises(M.CheckpointError, match="corrupt, not a torch file"):
        O.load_clip_vision(str(tmp_path / "garbage.pt"))

    class RunsCode:  # a pickle that would call print() while loading: refused, never run
        def __reduce__(self):
            return (print, ("this must not run",))
    torch.save({"visual.proj": torch.zeros(2), "x": RunsCode()}, tmp_path / "code.pt")
    with pytest.raises(M.CheckpointError, match="holds more than tensors"):
        O.read_state_dict(str(tmp_path / "code.pt"))


# -----------------------------------------------------------------------------
# Hugging Face CLIP


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_hf_clip_full_size(tmp_path, fmt):
    spec = S.hf_clip()
    state = S.materialize(spec, dtype=torch.float32 if fmt == "safetensors" else torch.float16)
    path = tmp_path / ("model.safetensors" if fmt == "safetensors" else "pytorch_model.bin")
    save_file(state, str(path)) if fmt == "safetensors" else torch.save(state, path)
    cfg, visual = O.load_clip_vision(str(tmp_path))  # a model directory, as downloaded
    assert (cfg.arch, cfg.image_size, cfg.patch_size, cfg.width, cfg.layers, cfg.output_dim) == \
        ("vit", 224, 32, 768, 12, 512)
    M.check_state_dict(M.VisionTransformer(cfg), _strip(visual, "visual."), what=str(path))
    # q, k, v land in OpenAI's packed in_proj rows in that order, and the projection is transposed
    w = visual["visual.transformer.resblocks.5.attn.in_proj_weight"]
    for j, n in enumerate(("q_proj", "k_proj", "v_proj")):
        assert torch.equal(w[j * 768:(j + 1) * 768], state[f"vision_model.encoder.layers.5.self_attn.{n}.weight"].float())
    assert torch.equal(visual["visual.proj"], state["visual_projection.weight"].t().float())


def test_hf_clip_config_json_is_checked(tmp_path):
    import json
    save_file(S.materialize(S.hf_clip(layers=1, text=False)), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"vision_config": {"hidden_act": "quick_gelu",
                                                                        "num_attention_heads": 12}}))
    assert O.load_clip_vision(str(tmp_path))[0].heads == 12
    (tmp_path / "config.json").write_text(json.dumps({"vision_config": {"hidden_act": "gelu"}}))
    with pytest.raises(M.CheckpointError, match="hidden_act=gelu"):
        O.load_clip_vision(str(tmp_path))


def test_hf_clip_without_projection_is_refused():
    state = S.materialize(S.hf_clip(layers=1, text=False))
    del state["visual_projection.weight"]
    with pytest.raises(M.CheckpointError, match="visual_projection.weight"):
        O.hf_clip_visual(state)


def test_openai_and_hf_formats_give_identical_embeddings(tmp_path):
    """The same random ViT-B/32 weights, saved as an OpenAI TorchScript archive and as HF safetensors."""
    state = S.materialize(S.openai_vit(text=False), dtype=torch.float16, random=True, seed=1)  # fp16 as OpenAI's
    S.write_torchscript(state, str(tmp_path / "ViT-B-32.pt"))
    save_file(S.openai_to_hf_visual(state), str(tmp_path / "model.safetensors"))
    cfg_a, vis_a = O.load_clip_vision(str(tmp_path / "ViT-B-32.pt"))
    cfg_b, vis_b = O.load_clip_vision(str(tmp_path / "model.safetensors"))
    assert cfg_a == cfg_b
    towers = []
    for vis in (vis_a, vis_b):
        t = M.VisionTransformer(cfg_a).eval()
        t.load_state_dict(_strip(vis, "visual."))
        towers.append(t)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = towers[0](x), towers[1](x)
    assert a.shape == (2, 512)
    assert torch.equal(a, b), f"max diff {float((a - b).abs().max())}"


# -----------------------------------------------------------------------------
# Hugging Face GPT-2


@pytest.mark.parametrize("fmt,prefix,lm_head,buffers,n_layer", [
    ("safetensors", "", False, True, 12),  # the gpt2 repository's model.safetensors, full size
    ("bin", "transformer.", True, False, 12),  # GPT2LMHeadModel.save_pretrained (newer: no mask buffers), full size
    ("bin", "", False, True, 2),  # the gpt2 repository's pytorch_model.bin layout (2 layers, to save time)
    ("safetensors", "transformer.", False, False, 2),  # save_pretrained to safetensors drops the tied lm_head
])
def test_hf_gpt2(tmp_path, fmt, prefix, lm_head, buffers, n_layer):
    state = S.materialize(S.hf_gpt2(prefix=prefix, lm_head=lm_head, buffers=buffers, n_layer=n_layer),
                          dtype=torch.float32)
    path = tmp_path / ("model.safetensors" if fmt == "safetensors" else "pytorch_model.bin")
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    gpt = O.gpt2_state(O.read_state_dict(str(path)), str(path))
    cfg = O.gpt2_config(gpt)
    assert cfg == M.GPT2Config(n_layer=n_layer), cfg
    M.check_state_dict(M.GPT2LMHeadModel(cfg), _strip(gpt, "gpt."), what=str(path))
    assert torch.equal(gpt["gpt.transformer.h.1.attn.c_attn.weight"], state[f"{prefix}h.1.attn.c_attn.weight"])


def test_gpt2_errors_are_named():
    state = S.materialize(S.hf_gpt2(n_layer=2, buffers=False), dtype=torch.float32)
    # a Conv1D weight stored like a Linear ([out, in]) is the classic porting mistake
    state["h.1.attn.c_attn.weight"] = state["h.1.attn.c_attn.weight"].t()
    del state["h.0.mlp.c_proj.bias"]
    gpt = O.gpt2_state(state)
    with pytest.raises(M.CheckpointError) as e:
        M.check_state_dict(M.GPT2LMHeadModel(O.gpt2_config(gpt)), _strip(gpt, "gpt."), what="gpt2")
    assert "missing (1): transformer.h.0.mlp.c_proj.bias" in str(e.value)
    assert "transformer.h.1.attn.c_attn.weight: checkpoint (2304, 768) vs model (768, 2304)" in str(e.value)
    state = S.materialize(S.hf_gpt2(n_layer=1, lm_head=True, buffers=False), dtype=torch.float32)
    state["lm_head.weight"] = state["lm_head.weight"] + 1
    with pytest.raises(M.CheckpointError, match="lm_head.weight differs"):
        O.gpt2_state(state)


# -----------------------------------------------------------------------------
# ClipCap's three published checkpoints, assembled with their CLIP


@pytest.mark.parametrize("name", ["coco_weights.pt", "conceptual_weights.pt", "transformer_coco.pt"])
def test_clipcap_checkpoints_full_size(files, tmp_path, name):
    """coco and conceptual share one structure (the Conceptual Captions model differs only in its values)."""
    transformer = name.startswith("transformer")
    spec = S.clipcap_transformer() if transformer else S.clipcap_mlp()
    state = S.materialize(spec, dtype=torch.float32, seed=len(name))
    path = tmp_path / name
    torch.save(state, path)
    model = O.build_official(files["rn" if transformer else "vit"], str(path))
    cfg = model.cfg
    if transformer:
        assert (cfg.mapper.type, cfg.mapper.prefix_length, cfg.mapper.clip_length, cfg.mapper.num_layers) == \
            ("transformer", 40, 40, 8)
        assert cfg.vision.arch == "resnet" and cfg.vision.output_dim == 640
        assert cfg.normalize_prefix is True, "the transformer checkpoint was published with L2-normalised input"
        k = "clip_project.transformer.layers.7.attn.to_keys_values.weight"
    else:
        assert (cfg.mapper.type, cfg.mapper.prefix_length) == ("mlp", 10)
        assert cfg.vision.arch == "vit" and cfg.vision.output_dim == 512
        assert cfg.normalize_prefix is False, "the MLP checkpoints take the raw CLIP embedding"
        k = "clip_project.model.2.weight"
    assert cfg.gpt2 == M.GPT2Config()
    got = model.state_dict()
    assert torch.equal(got[k], state[k])
    assert torch.equal(got["gpt.transformer.h.11.mlp.c_fc.weight"], state["gpt.transformer.h.11.mlp.c_fc.weight"])
    assert torch.equal(got["gpt.transformer.wte.weight"], state["gpt.lm_head.weight"])


def test_clipcap_wrong_shape_missing_key_and_wrong_clip(files, tmp_path):
    state = S.materialize(S.clipcap_transformer(num_layers=8, n_layer=1), dtype=torch.float32)  # 1 GPT-2 layer: faster
    del state["clip_project.transformer.layers.3.norm2.bias"]
    state["clip_project.transformer.layers.0.attn.to_queries.bias"] = torch.zeros(768)  # the reference has no q bias
    state["clip_project.transformer.layers.5.mlp.fc1.weight"] = torch.zeros(3072, 768)  # mlp_ratio 4, not 2
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    small_rn = tmp_path / "rn-small.pt"  # a small ResNet tower with RN50x4's 640-d output keeps this test quick
    S.write_torchscript(S.materialize(S.openai_resnet(image=64, width=16, layers=(1, 1, 1, 1), text=False)),
                        str(small_rn))
    with pytest.raises(M.CheckpointError) as e:
        O.build_official(str(small_rn), str(path))
    msg = str(e.value)
    assert "broken.pt" in msg
    assert "missing (1): clip_project.transformer.layers.3.norm2.bias" in msg
    assert "unexpected (1): clip_project.transformer.layers.0.attn.to_queries.bias" in msg
    assert "clip_project.transformer.layers.5.mlp.fc1.weight: checkpoint (3072, 768) vs model (1536, 768)" in msg
    # the MLP checkpoints need ViT-B/32's 512-d embedding, not RN50x4's 640
    small = S.materialize(S.clipcap_mlp(n_layer=1, buffers=False), dtype=torch.float32)
    torch.save(small, tmp_path / "coco_weights.pt")
    with pytest.raises(M.CheckpointError, match="expects 512-d CLIP embeddings, but .* gives 640-d"):
        O.build_official(files["rn"], str(tmp_path / "coco_weights.pt"))


# -----------------------------------------------------------------------------
# The RN50x4 tower's behaviour, on a small configuration


def _small_rn_cfg():
    return M.VisionConfig(arch="resnet", image_size=64, width=16, heads=8, output_dim=24, resnet_layers=(1, 2, 1, 1))


def test_attention_pool_matches_torch_multi_head_attention():
    """OpenAI's AttentionPool2d calls F.multi_head_attention_forward with the mean as the only query; ours spells
    the same attention out in MatMuls for ONNX."""
    torch.manual_seed(0)
    pool = M.AttentionPool2d(grid=3, embed_dim=32, num_heads=4, output_dim=12).eval()
    x = torch.randn(2, 32, 3, 3)
    seq = x.flatten(2).permute(2, 0, 1)  # (HW, B, C)
    seq = torch.cat([seq.mean(dim=0, keepdim=True), seq], dim=0) + pool.positional_embedding[:, None, :]
    ref, _ = F.multi_head_attention_forward(
        query=seq[:1], key=seq, value=seq, embed_dim_to_check=32, num_heads=4,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias, use_separate_proj_weight=True, training=False, need_weights=False)
    with torch.no_grad():
        ours = pool(x)
    torch.testing.assert_close(ours, ref.squeeze(0), rtol=1e-5, atol=1e-6)


def test_small_resnet_tower_round_trips_through_the_openai_format(tmp_path):
    cfg = _small_rn_cfg()
    spec = S.openai_resnet(image=cfg.image_size, width=cfg.width, layers=cfg.resnet_layers,
                           embed_dim=cfg.output_dim, text_width=32, text_layers=1, vocab=10)
    state = S.materialize(spec, dtype=torch.float32, random=True)
    S.write_torchscript(state, str(tmp_path / "rn.pt"))
    got_cfg, visual = O.load_clip_vision(str(tmp_path / "rn.pt"))
    assert got_cfg == M.VisionConfig(arch="resnet", image_size=64, width=16, heads=8, output_dim=24,
                                     resnet_layers=(1, 2, 1, 1))
    tower = M.ModifiedResNet(got_cfg).eval()
    tower.load_state_dict(_strip(visual, "visual."))
    with torch.no_grad():
        y = tower(torch.randn(3, 3, 64, 64))
    assert y.shape == (3, 24) and torch.isfinite(y).all()
    with pytest.raises(AssertionError, match=r"pixel_values must be \(B, 3, 64, 64\)"):
        tower(torch.randn(1, 3, 32, 32))


def test_vit_block_reads_nn_multihead_attention_parameters_as_torch_does():
    """OpenAI's ViT blocks store nn.MultiheadAttention's in_proj_weight / in_proj_bias / out_proj (q, k, v stacked
    in that order). Our block must compute what nn.MultiheadAttention computes with the very same tensors."""
    torch.manual_seed(0)
    width, heads = 64, 4
    block = M.ResidualAttentionBlock(width, heads).eval()
    mha = torch.nn.MultiheadAttention(width, heads).eval()  # OpenAI's module; its inputs are (T, B, C)
    mha.load_state_dict({"in_proj_weight": block.attn.in_proj_weight, "in_proj_bias": torch.randn(3 * width),
                         "out_proj.weight": block.attn.out_proj.weight, "out_proj.bias": block.attn.out_proj.bias})
    with torch.no_grad():
        block.attn.in_proj_bias.copy_(mha.in_proj_bias)
        x = torch.randn(2, 7, width)  # (B, T, C)
        h = block.ln_1(x)
        ref = x + mha(h.transpose(0, 1), h.transpose(0, 1), h.transpose(0, 1), need_weights=False)[0].transpose(0, 1)
        ref = ref + block.mlp(block.ln_2(ref))
        torch.testing.assert_close(block(x), ref, rtol=1e-5, atol=1e-5)


def test_transcribed_specs_match_published_parameter_counts():
    """Independent checks of official_specs against numbers the publishers printed: openai/CLIP's
    Interacting_with_CLIP.ipynb reports "Model parameters: 151,277,313" for ViT-B/32, and GPT-2 small
    (GPT2LMHeadModel, head tied) has 124,439,808."""
    def count(spec, skip=("input_resolution", "context_length", "vocab_size")):
        n = 0
        for k, shape in spec.items():
            if k not in skip and not k.endswith(("num_batches_tracked", "running_mean", "running_var")):
                n += int(torch.Size(shape).numel())
        return n
    assert count(S.openai_vit()) == 151_277_313
    assert count(S.hf_gpt2(buffers=False)) == 124_439_808
    assert count(S.hf_clip(position_ids=False)) == 151_277_313  # the same model in HF's layout
    tower = M.VisionTransformer(M.VisionConfig())  # ViT-B/32's image tower: the part of the 151M this model holds
    assert count(S.openai_vit(text=False)) == sum(p.numel() for p in tower.parameters()) == 87_849_216


def test_transformer_mapper_computes_what_the_reference_computes():
    """The published transformer checkpoint's tensors, run through rmokady/CLIP_prefix_caption's TransformerMapper
    semantics written out here (keys before values in to_keys_values, scores "bnhd,bmhd->bnmh" with softmax over
    the keys, pre-LN blocks with a ReLU MLP, the last prefix_length outputs) give what our TransformerMapper gives."""
    E, heads, clip_length, prefix_length, layers, D = 32, 8, 3, 4, 2, 12
    spec = S.clipcap_transformer(prefix_length=prefix_length, clip_length=clip_length, dim_clip=D, num_layers=layers,
                                 n_embd=E, n_layer=1, n_pos=8, vocab=10)
    sd = {k[len("clip_project."):]: v for k, v in S.materialize(spec, torch.float32, random=True, seed=4).items()
          if k.startswith("clip_project.")}
    x = torch.randn(2, D, generator=torch.Generator().manual_seed(1))

    def ln(h, p):
        return F.layer_norm(h, (E,), sd[p + ".weight"], sd[p + ".bias"])

    h = F.linear(x, sd["linear.weight"], sd["linear.bias"]).view(2, clip_length, E)
    h = torch.cat([h, sd["prefix_const"].unsqueeze(0).expand(2, -1, -1)], dim=1)
    for i in range(layers):
        p = f"transformer.layers.{i}"
        y = ln(h, p + ".norm1")
        b, n, c = y.shape
        q = F.linear(y, sd[p + ".attn.to_queries.weight"]).reshape(b, n, heads, c // heads)
        kv = F.linear(y, sd[p + ".attn.to_keys_values.weight"]).reshape(b, n, 2, heads, c // heads)
        att = (torch.einsum("bnhd,bmhd->bnmh", q, kv[:, :, 0]) * (c // heads) ** -0.5).softmax(dim=2)
        out = torch.einsum("bnmh,bmhd->bnhd", att, kv[:, :, 1]).reshape(b, n, c)
        h = h + F.linear(out, sd[p + ".attn.project.weight"], sd[p + ".attn.project.bias"])
        y = F.relu(F.linear(ln(h, p + ".norm2"), sd[p + ".mlp.fc1.weight"], sd[p + ".mlp.fc1.bias"]))
        h = h + F.linear(y, sd[p + ".mlp.fc2.weight"], sd[p + ".mlp.fc2.bias"])
    ref = h[:, clip_length:]

    cfg = M.MapperConfig(type="transformer", prefix_length=prefix_length, clip_length=clip_length, num_layers=layers,
                         num_heads=heads)
    mapper = M.TransformerMapper(D, E, cfg).eval()
    M.check_state_dict(mapper, sd, what="transformer mapper")
    mapper.load_state_dict(sd)
    with torch.no_grad():
        torch.testing.assert_close(mapper(x), ref, rtol=1e-5, atol=1e-5)


def test_gpt2_computes_what_hugging_face_gpt2_computes():
    """HF GPT-2 tensors (Conv1D weights [in, out]: y = x @ W + b) through HF's GPT2LMHeadModel semantics written out
    here: pre-LN blocks, c_attn output split q|k|v, causal softmax(q k^T / sqrt(hd)), gelu_new (tanh), ln_f, head
    tied to wte. Our GPT2LMHeadModel, loaded through gpt2_state, must give the same logits."""
    hf = S.materialize(S.hf_gpt2(n_embd=32, n_layer=2, n_pos=16, vocab=50), torch.float32, random=True, seed=7)
    gpt = O.gpt2_state(hf)
    cfg = M.GPT2Config(**{**O.gpt2_config(gpt).__dict__, "n_head": 4})  # 32-wide toy: 4 heads of 8, not 64-wide
    ids = torch.tensor([[3, 14, 15, 9, 2, 6]])
    E, H, T = 32, 4, ids.shape[1]

    def ln(x, p):
        return F.layer_norm(x, (E,), hf[p + ".weight"], hf[p + ".bias"], eps=1e-5)

    def gelu_new(x):
        return 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x ** 3)))

    h = hf["wte.weight"][ids] + hf["wpe.weight"][torch.arange(T)]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(2):
        p = f"h.{i}"
        q, k, v = (ln(h, p + ".ln_1") @ hf[p + ".attn.c_attn.weight"] + hf[p + ".attn.c_attn.bias"]).split(E, dim=2)
        q, k, v = (t.view(1, T, H, E // H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2) / (E // H) ** 0.5).masked_fill(~causal, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(1, T, E)
        h = h + o @ hf[p + ".attn.c_proj.weight"] + hf[p + ".attn.c_proj.bias"]
        m = gelu_new(ln(h, p + ".ln_2") @ hf[p + ".mlp.c_fc.weight"] + hf[p + ".mlp.c_fc.bias"])
        h = h + m @ hf[p + ".mlp.c_proj.weight"] + hf[p + ".mlp.c_proj.bias"]
    ref = ln(h, "ln_f") @ hf["wte.weight"].t()  # (1, T, V)

    model = M.GPT2LMHeadModel(cfg).eval()
    part = {k[len("gpt."):]: v for k, v in gpt.items()}
    M.check_state_dict(model, part, what="gpt2")
    model.load_state_dict(part)
    with torch.no_grad():
        logits, _ = model(model.transformer.wte(ids))
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)
