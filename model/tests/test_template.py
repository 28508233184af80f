"""Graph templates (model/template.py, docs/model-install.md section 3): a template filled with weights must give
byte for byte the pack export_pack writes for the same weights, on every code path the exporter has (ViT + MLP,
ViT + transformer mapper, ResNet with BatchNorm folded into its convolutions, CLIP's text tower), at fp32 and fp16."""
import json
import os

import numpy as np
import onnx
import pytest
import torch

from model import template as T
from model.export import ASSUMED_TEXT_MANIFEST, export_pack
from model.model import ClipCap, ClipCapConfig, GPT2Config, MapperConfig, VisionConfig, load_checkpoint
from model.random_pack import SIZES

TINY_RESNET = ClipCapConfig(
    vision=VisionConfig(image_size=64, width=8, heads=4, output_dim=16, arch="resnet", resnet_layers=(1, 2, 1, 1)),
    gpt2=GPT2Config(n_positions=64, n_embd=32, n_layer=1, n_head=2),
    mapper=MapperConfig(type="transformer", prefix_length=3, clip_length=2, num_layers=1, num_heads=4),
    normalize_prefix=True,
)
# toy and small have CLIP's text tower (a text graph in their templates), the tiny ResNet has none
CONFIGS = {"toy": T.named_config("toy")[0], "small": SIZES["small"], "tiny-resnet": TINY_RESNET}
TOY_CHECKPOINT = os.path.join(os.path.dirname(__file__), "..", "..", "packs", ".build", "toy", "model.pt")
META = {"id": "filled", "version": "1.0.0", "name": "Filled", "description": "", "provenance": {"by": "test"}}


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Every (config, precision) template, built once for the module."""
    root = tmp_path_factory.mktemp("templates")
    out = {}
    for name, cfg in CONFIGS.items():
        kw = T.named_config("toy")[1] if name == "toy" else T.text_manifest_of(cfg)
        for precision in T.TEMPLATE_PRECISIONS:
            d = str(root / f"{name}-{precision}")
            T.build_template(cfg, precision, d, f"{name}-{precision}", seed=0, manifest_kw=kw, log=quiet)
            out[name, precision] = (d, kw)
    return out


PACK_FILES = ["vision.onnx", "mapper.onnx", "decoder.onnx", "tokenizer.json"]
TEXT_FILES = ["text.onnx", "text-tokenizer.json"]


def assert_same_pack(a, b):
    files = PACK_FILES + [f for f in TEXT_FILES if os.path.exists(os.path.join(a, f))]
    assert sorted(f for f in os.listdir(b) if f != "pack.json") == sorted(files)
    for f in files:
        with open(os.path.join(a, f), "rb") as x, open(os.path.join(b, f), "rb") as y:
            assert x.read() == y.read(), f"{f} differs between export_pack and fill_template"
    with open(os.path.join(a, "pack.json")) as x, open(os.path.join(b, "pack.json")) as y:
        assert json.load(x) == json.load(y)


@pytest.mark.parametrize("precision", T.TEMPLATE_PRECISIONS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_fill_equals_export_pack_for_other_weights(templates, tmp_path, name, precision):
    d, kw = templates[name, precision]
    model = T.random_model(CONFIGS[name], seed=1234)  # not the template's weights
    exported = export_pack(model, str(tmp_path / "export"), META["id"], META["name"], precision, META["provenance"],
                           **kw)
    files = T.fill_template(d, T.split_roles(model.state_dict()), str(tmp_path / "fill"), meta=META)
    assert_same_pack(str(tmp_path / "export"), str(tmp_path / "fill"))
    assert files == exported["files"]


def with_toy_text(model: ClipCap) -> ClipCap:
    """The trained toy with the toy template's text tower: its own once the toy world has learnt CLIP, else a
    random one of distinct values (the rest of the weights the trained ones)."""
    if model.text is not None:
        return model
    new = T.random_model(CONFIGS["toy"], seed=99)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("text.") for k in missing)
    return new


@pytest.mark.skipif(not os.path.exists(TOY_CHECKPOINT), reason="trained toy checkpoint absent (npm run pack:toy)")
@pytest.mark.parametrize("precision", T.TEMPLATE_PRECISIONS)
def test_fill_equals_export_pack_for_trained_toy(templates, tmp_path, precision):
    d, kw = templates["toy", precision]
    model = with_toy_text(load_checkpoint(TOY_CHECKPOINT))
    export_pack(model, str(tmp_path / "export"), META["id"], META["name"], precision, META["provenance"], **kw)
    T.fill_template(d, T.split_roles(model.state_dict()), str(tmp_path / "fill"), meta=META)
    assert_same_pack(str(tmp_path / "export"), str(tmp_path / "fill"))


def test_template_files_and_recipes(templates):
    d, _ = templates["tiny-resnet", "fp16"]
    t = T.load_template(d)
    assert sorted(os.listdir(d)) == ["decoder.skel", "mapper.skel", "template.json", "tokenizer.json", "vision.skel"]
    ops = {p["op"] for g in t["graphs"] for p in g["pieces"] if "op" in p}
    assert ops == {"identity", "transpose", "bn_fold_weight", "bn_fold_bias"}
    assert {p["dtype"] for g in t["graphs"] for p in g["pieces"] if "op" in p} == {"float32", "float16"}
    for g in t["graphs"]:  # copy pieces tile the skeleton, in order
        copies = [p["copy"] for p in g["pieces"] if "copy" in p]
        assert copies[0][0] == 0 and all(a[1] == b[0] for a, b in zip(copies, copies[1:]))
        assert copies[-1][1] == g["skeletonBytes"] == os.path.getsize(os.path.join(d, g["skeleton"]))
    fold = next(p for g in t["graphs"] for p in g["pieces"] if p.get("op") == "bn_fold_weight")
    assert fold["args"] == ["visual.conv1.weight", "visual.bn1.weight", "visual.bn1.bias", "visual.bn1.running_mean",
                            "visual.bn1.running_var"] and fold["attrs"] == {"eps": 1e-5}
    clip, clipcap = t["inputs"]["clip"], t["inputs"]["clipcap"]
    assert all(k.startswith("visual.") for k in clip["params"]) and "visual.bn1.running_var" in clip["params"]
    assert not any(k.endswith("num_batches_tracked") for k in clip["params"])
    assert all(k.startswith(("clip_project.", "gpt.")) for k in clipcap["params"])
    assert clipcap["optional"] == {"gpt.lm_head.weight": "gpt.transformer.wte.weight"}
    # the transformer mapper's prefix_const is stored as the Expand input (1, P, E): same bytes, another shape
    prefix = [p for g in t["graphs"] for p in g["pieces"] if p.get("args") == ["clip_project.prefix_const"]]
    assert [p["shape"] for p in prefix] == [[1, 3, 32]] and clipcap["params"]["clip_project.prefix_const"] == [3, 32]
    assert t["manifest"]["precision"] == "fp16" and "files" not in t["manifest"] and "id" not in t["manifest"]
    # no text graph: the text tower OpenAI's file holds is ignored, as before there was a text role
    assert [g["role"] for g in t["graphs"]] == ["vision", "mapper", "decoder"] and "text" not in t["manifest"]
    assert set(T.CLIP_IGNORE_TEXT) <= set(clip["ignore"])


def test_text_role_reads_the_clip_archive_keys(templates):
    d, _ = templates["small", "fp16"]
    t = T.load_template(d)
    assert sorted(os.listdir(d)) == ["decoder.skel", "mapper.skel", "template.json", "text-tokenizer.json",
                                     "text.skel", "tokenizer.json", "vision.skel"]
    text = next(g for g in t["graphs"] if g["role"] == "text")
    assert text["path"] == "text.onnx" and text["skeletonBytes"] == os.path.getsize(os.path.join(d, "text.skel"))
    args = {a for p in text["pieces"] for a in p.get("args", [])}
    # OpenAI's own top-level names: no "text." prefix, no vision or ClipCap key
    w, L = 32, 2
    assert args == {"token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias",
                    "text_projection"} | {f"transformer.resblocks.{i}.{m}" for i in range(L) for m in (
                        "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias",
                        "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
                        "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias")}
    clip = t["inputs"]["clip"]
    assert args <= set(clip["params"]) and clip["params"]["token_embedding.weight"] == [49408, w]
    assert clip["params"]["text_projection"] == [w, 48] and clip["params"]["positional_embedding"] == [77, w]
    assert not any(k.startswith("text.") for k in clip["params"])
    # the text keys are weights now; the temperature and the archive's integers are still ignored
    assert "logit_scale" not in clip["params"] and "^logit_scale$" in clip["ignore"]
    assert not set(T.CLIP_IGNORE_TEXT) & set(clip["ignore"])
    assert t["manifest"]["text"] == {"dim": 48, "contextLength": 77, "bos": 49406, "eot": 49407, "clipScoreWeight": 2.5,
                                     "rerankWeight": ASSUMED_TEXT_MANIFEST["rerankWeight"],
                                     "gateThreshold": ASSUMED_TEXT_MANIFEST["gateThreshold"],
                                     "calibration": ASSUMED_TEXT_MANIFEST["calibration"]}
    assert t["manifest"]["text"]["calibration"]["method"] == "assumed"


def test_release_configs_carry_their_clip_text_towers():
    # openai/CLIP build_model: transformer_width = ln_final width, heads = width // 64, 12 layers, both models
    vit, rn = T.CONFIGS["vit-b32-mlp"].text, T.CONFIGS["rn50x4-transformer"].text
    assert (vit.width, vit.layers, vit.heads, vit.output_dim) == (512, 12, 8, 512)
    assert (rn.width, rn.layers, rn.heads, rn.output_dim) == (640, 12, 10, 640)
    for name in T.CONFIGS:
        cfg, kw = T.named_config(name)
        assert cfg.text.output_dim == cfg.vision.output_dim and kw["text_manifest"] is ASSUMED_TEXT_MANIFEST


def test_text_off_leaves_the_tower_out_and_its_keys_unread(templates, tmp_path):
    d, _ = templates["small", "fp32"]
    sd = T.split_roles(T.random_model(CONFIGS["small"], seed=5).state_dict())
    on = T.fill_template(d, sd, str(tmp_path / "on"), meta=META)
    # another text tower in the CLIP file: refused with the tower on, every text key named; ignored with it off
    other = {"clip": {k: v for k, v in sd["clip"].items() if not k.startswith("transformer.resblocks.1.")},
             "clipcap": sd["clipcap"]}
    other["clip"]["token_embedding.weight"] = torch.zeros(100, 32)
    with pytest.raises(T.TemplateError) as e:
        T.fill_template(d, other, str(tmp_path / "bad"))
    msg = str(e.value)
    assert "input 'clip' missing (12): transformer.resblocks.1." in msg
    assert "token_embedding.weight: given [100, 32], template [49408, 32]" in msg and "visual." not in msg
    off = T.fill_template(d, other, str(tmp_path / "off"), meta=META, text=False)
    assert sorted(off) == ["decoder", "mapper", "tokenizer", "vision"] and off == {k: on[k] for k in off}
    assert sorted(os.listdir(tmp_path / "off")) == sorted(PACK_FILES + ["pack.json"])
    with open(tmp_path / "off" / "pack.json") as f:
        m = json.load(f)
    assert "text" not in m and sorted(m["files"]) == ["decoder", "mapper", "tokenizer", "vision"]
    # a template without a text graph is unchanged by text=False
    d2, _ = templates["tiny-resnet", "fp32"]
    t2 = T.load_template(d2)
    assert T.without_text(t2) is t2


def test_wire_walker_agrees_with_onnx(templates, tmp_path):
    model = T.random_model(CONFIGS["small"], seed=3)
    export_pack(model, str(tmp_path), "x", "x", "fp16", text_manifest=ASSUMED_TEXT_MANIFEST)
    for role in T.ROLES + (T.TEXT_ROLE,):
        path = str(tmp_path / f"{role}.onnx")
        with open(path, "rb") as f:
            buf = f.read()
        ours = T.onnx_initializers(buf)
        theirs = onnx.load(path).graph.initializer
        assert [t["name"] for t in ours] == [i.name for i in theirs]
        for t, i in zip(ours, theirs):
            assert t["dims"] == list(i.dims) and t["data_type"] == i.data_type
            assert buf[t["raw"][0]:t["raw"][1]] == i.raw_data


def test_int8_is_refused(tmp_path):
    with pytest.raises(T.TemplateError, match="int8"):
        T.build_template(CONFIGS["small"], "int8", str(tmp_path), "x", log=quiet)
    assert not os.listdir(tmp_path)


def test_inputs_are_checked_all_at_once(templates, tmp_path):
    d, _ = templates["tiny-resnet", "fp32"]  # no text graph: the text tower's keys are ignored
    sd = T.split_roles(T.random_model(CONFIGS["tiny-resnet"], seed=5).state_dict())
    # what published files also carry is accepted: the text tower, GPT-2's mask buffers, the tied head
    ok = {"clip": {**sd["clip"], "token_embedding.weight": torch.zeros(3, 2), "input_resolution": torch.tensor(32),
                   "transformer.resblocks.0.ln_1.weight": torch.zeros(2)},
          "clipcap": {**sd["clipcap"], "gpt.transformer.h.0.attn.bias": torch.ones(1, 1, 4, 4),
                      "gpt.transformer.h.0.attn.masked_bias": torch.tensor(-1e4),
                      "gpt.lm_head.weight": sd["clipcap"]["gpt.transformer.wte.weight"].clone()}}
    T.fill_template(d, ok, str(tmp_path / "ok"))
    bad = {"clip": dict(sd["clip"]), "clipcap": dict(sd["clipcap"])}
    del bad["clip"]["visual.attnpool.c_proj.weight"]
    bad["clip"]["visual.extra"] = torch.zeros(1)
    bad["clipcap"]["clip_project.linear.weight"] = torch.zeros(7, 7)
    bad["clipcap"]["gpt.lm_head.weight"] = torch.zeros_like(sd["clipcap"]["gpt.transformer.wte.weight"])
    bad["clipcap"]["gpt.transformer.ln_f.bias"] = torch.zeros(32, dtype=torch.long)
    with pytest.raises(T.TemplateError) as e:
        T.fill_template(d, bad, str(tmp_path / "bad"))
    msg = str(e.value)
    assert "missing (1): visual.attnpool.c_proj.weight" in msg and "unexpected (1): visual.extra" in msg
    assert "clip_project.linear.weight: given [7, 7]" in msg and "gpt.lm_head.weight differs" in msg
    assert "gpt.transformer.ln_f.bias: given torch.int64, a weight must be floating point" in msg
    with pytest.raises(T.TemplateError, match="input 'clipcap': not given"):
        T.fill_template(d, {"clip": sd["clip"]}, str(tmp_path / "bad2"))


def test_a_wrong_fp16_rounding_is_caught_before_writing(tmp_path, monkeypatch):
    """The rebuild check: a recipe interpreter that rounds toward zero instead of to nearest even is refused,
    naming the initialiser, and nothing is written."""
    real = T.tensor_bytes

    def truncating(piece, arrays):
        if piece["dtype"] != "float16":
            return real(piece, arrays)
        x = T.run_op(piece["op"], [arrays[n] for n in piece["args"]], piece.get("attrs"))
        bits = (x.astype("<f4").view("<u4") & np.uint32(0xFFFFE000)).view("<f4")  # drop the bits fp16 drops
        return bits.astype("<f2").tobytes()

    monkeypatch.setattr(T, "tensor_bytes", truncating)
    with pytest.raises(T.TemplateError, match=r"initialiser rebuilt by .* as float16 .* differs from the exported"):
        T.build_template(CONFIGS["small"], "fp16", str(tmp_path / "t"), "x", log=quiet)
    assert not os.path.exists(tmp_path / "t")


def test_a_wrong_bn_fold_is_caught(tmp_path, monkeypatch):
    """torch folds BatchNorm in float32 in a fixed order; the same fold in float64 rounds differently, so no
    initialiser matches it and the BatchNorm parameters are reported as underived."""
    real = T.run_op

    def float64_fold(op, args, attrs=None):
        if op not in ("bn_fold_weight", "bn_fold_bias"):
            return real(op, args, attrs)
        conv_w, bn_w, bn_b, mean, var = [np.asarray(a, np.float64) for a in args]
        s = bn_w / np.sqrt(var + attrs["eps"])
        out = conv_w * s.reshape((-1,) + (1,) * (conv_w.ndim - 1)) if op == "bn_fold_weight" else bn_b - mean * s
        return out.astype(np.float32)

    monkeypatch.setattr(T, "run_op", float64_fold)
    with pytest.raises(T.TemplateError, match=r"parameters no initialiser was derived from .*visual\.conv1\.weight"):
        T.build_template(TINY_RESNET, "fp32", str(tmp_path / "t"), "x", log=quiet)


def test_reassembly_is_checked(tmp_path, monkeypatch):
    real = T.graph_pieces

    def losing_a_byte(buf, by_name, role):
        skeleton, pieces = real(buf, by_name, role)
        last = pieces[-1]["copy"]
        pieces[-1] = {"copy": [last[0], last[1] - 1]}
        return skeleton, pieces

    monkeypatch.setattr(T, "graph_pieces", losing_a_byte)
    with pytest.raises(T.TemplateError, match="vision.onnx: skeleton and pieces do not reassemble"):
        T.build_template(CONFIGS["small"], "fp32", str(tmp_path / "t"), "x", log=quiet)


def test_cli_names_the_template(tmp_path, capsys):
    out = str(tmp_path / "small-fp32")
    T.main(["--config", "small", "--precision", "fp32", "--out", out])
    assert T.load_template(out)["id"] == "small-fp32"
    assert "small-fp32: skeletons" in capsys.readouterr().out


# -----------------------------------------------------------------------------
# official.build_official accepts what openai/CLIP's build_model accepts: the templates ignore BatchNorm's
# num_batches_tracked, and so must the Python loader, or a pack built in Python would refuse a file the
# extension converts.


def _resnet_files(tmp_path, drop):
    import sys
    sys.path.insert(0, os.path.dirname(__file__))
    import official_specs as S
    clip = S.materialize(S.openai_resnet(image=64, width=8, layers=(1, 1, 1, 1), embed_dim=16, text_width=16,
                                           text_layers=1, vocab=50),
                         random=True)
    clip = {k: v for k, v in clip.items() if not drop(k)}
    S.write_torchscript(clip, str(tmp_path / "rn.pt"))
    clipcap = S.materialize(S.clipcap_transformer(prefix_length=2, clip_length=2, dim_clip=16, num_layers=1,
                                                  n_embd=64, n_layer=1, n_pos=16, vocab=100), random=True)
    torch.save(clipcap, str(tmp_path / "cc.pt"))
    return clip, str(tmp_path / "rn.pt"), str(tmp_path / "cc.pt")


def test_build_official_accepts_a_resnet_without_num_batches_tracked(tmp_path):
    from model.official import build_official
    clip, rn, cc = _resnet_files(tmp_path, lambda k: k.endswith("num_batches_tracked"))
    assert not any(k.endswith("num_batches_tracked") for k in clip)
    model = build_official(rn, cc)
    sd = model.state_dict()
    assert torch.equal(sd["visual.layer1.0.bn2.running_var"], clip["visual.layer1.0.bn2.running_var"].float())
    assert int(sd["visual.bn1.num_batches_tracked"]) == 0


def test_build_official_still_refuses_a_resnet_without_running_stats(tmp_path):
    from model.model import CheckpointError
    from model.official import build_official
    _, rn, cc = _resnet_files(tmp_path, lambda k: k.endswith("bn1.running_var") or k.endswith("num_batches_tracked"))
    with pytest.raises(CheckpointError, match=r"missing \(\d+\): visual\.bn1\.running_var"):
        build_official(rn, cc)


def test_fill_from_published_files_equals_build_official_export(tmp_path):
    """The converter's real job: the state dicts read from the published containers (an OpenAI ResNet archive in
    fp16 with its text tower and without num_batches_tracked; a ClipCap checkpoint with GPT-2's mask buffers and
    tied lm_head) fill the template to the very pack build_official + export_pack make from the same files."""
    from model.official import build_official, read_state_dict
    _, rn, cc = _resnet_files(tmp_path, lambda k: k.endswith("num_batches_tracked"))
    model = build_official(rn, cc)
    export_pack(model, str(tmp_path / "export"), META["id"], META["name"], "fp16", META["provenance"])
    T.build_template(model.cfg, "fp16", str(tmp_path / "template"), "rn-fp16", log=quiet)
    published = {"clip": read_state_dict(rn), "clipcap": read_state_dict(cc)}
    assert "gpt.lm_head.weight" in published["clipcap"] and "gpt.transformer.h.0.attn.bias" in published["clipcap"]
    assert published["clip"]["visual.conv1.weight"].dtype == torch.float16
    assert "token_embedding.weight" in published["clip"] and "input_resolution" in published["clip"]
    T.fill_template(str(tmp_path / "template"), published, str(tmp_path / "fill"), meta=META)
    assert_same_pack(str(tmp_path / "export"), str(tmp_path / "fill"))
