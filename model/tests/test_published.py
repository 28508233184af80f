"""model/published.py: synthetic files in the containers and key names of the published ClipCap and CLIP weights.
Each file is loaded back the way the publishers' own code loads it (torch.load, torch.jit.load, safetensors) and
must hold exactly the weights it was written from, under the official names (tests/official_specs.py)."""
import hashlib
import json
import pickletools
import zipfile

import pytest
import torch

from model import published as P
from model.model import ClipCap
from model.safetensors_io import load_file

import official_specs as S


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("published") / "small"
    P.main(["--random", "small", "--out", str(out), "--seed", "2"])
    torch.manual_seed(2)
    return out, ClipCap(P.RANDOM["small"]).state_dict()


def _globals(pkl: bytes):
    """The globals a pickle names (GLOBAL and STACK_GLOBAL), read with pickletools, never loaded."""
    names, strings = set(), []
    for op, arg, _ in pickletools.genops(pkl):
        if op.name == "GLOBAL":
            names.add(arg.replace(" ", "."))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            names.add(".".join(strings[-2:]))
    return names


def test_clipcap_zip_is_coco_weights_container(small):
    out, state = small
    got = torch.load(out / "clipcap.pt", map_location="cpu")
    assert type(got).__name__ == "OrderedDict"
    for k, v in state.items():
        if k.startswith(("clip_project.", "gpt.")):
            assert torch.equal(got[k], v), k
    assert not any(k.startswith("visual.") for k in got)
    cfg = P.RANDOM["small"]
    bias = got["gpt.transformer.h.1.attn.bias"]
    assert bias.dtype == torch.uint8 and bias.shape == (1, 1, cfg.gpt2.n_positions, cfg.gpt2.n_positions)
    assert torch.equal(bias[0, 0], torch.tril(torch.ones_like(bias[0, 0])))
    assert got["gpt.transformer.h.1.attn.masked_bias"].item() == -1e4
    assert torch.equal(got["gpt.lm_head.weight"], got["gpt.transformer.wte.weight"])
    assert got._metadata["gpt.transformer.h.0.attn"] == {"version": 1}, "a state_dict()'s _metadata, as ClipCap's file has"
    assert got["gpt.lm_head.weight"].data_ptr() == got["gpt.transformer.wte.weight"].data_ptr(), "tied: one storage"
    with zipfile.ZipFile(out / "clipcap.pt") as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        pkl = z.read("clipcap/data.pkl")
    assert _globals(pkl) <= {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage",
                             "torch.ByteStorage"}


def test_clipcap_keys_match_the_official_transformer_spec(small):
    out, _ = small
    cfg = P.RANDOM["small"]
    spec = S.clipcap_transformer(prefix_length=cfg.mapper.prefix_length, clip_length=cfg.mapper.clip_length,
                                 dim_clip=cfg.vision.output_dim, num_layers=cfg.mapper.num_layers, n_embd=cfg.gpt2.n_embd,
                                 n_layer=cfg.gpt2.n_layer, n_pos=cfg.gpt2.n_positions)
    got = torch.load(out / "clipcap.pt", map_location="cpu")
    assert {k: tuple(v.shape) for k, v in got.items()} == dict(spec)


def test_torchscript_clip_like_openai(small):
    out, state = small
    sd = torch.jit.load(str(out / "clip.pt"), map_location="cpu").state_dict()
    for k, v in state.items():
        if k.startswith("visual."):
            assert torch.equal(sd[k].float(), v.half().float() if P._OPENAI_FP16.search(k) else v), k
    assert sd["visual.conv1.weight"].dtype == torch.float16 and sd["visual.proj"].dtype == torch.float16
    assert sd["visual.ln_pre.weight"].dtype == torch.float32 and sd["visual.class_embedding"].dtype == torch.float32
    assert (sd["input_resolution"].item(), sd["context_length"].item()) == (32, 77)
    assert sd["vocab_size"].item() == sd["token_embedding.weight"].shape[0]
    assert "transformer.resblocks.0.attn_mask" not in sd  # a plain attribute, as in OpenAI's archives
    assert getattr(torch.jit.load(str(out / "clip.pt")).transformer.resblocks, "0").attn_mask.shape == (77, 77)
    text = {k for k in sd if not k.startswith("visual.")}
    tc = P.RANDOM["small"].text  # the small random model's own text tower (random_pack.SIZES), in OpenAI's names
    expected = {k for k in S.openai_vit(image=32, patch=8, width=32, layers=2, embed_dim=48, text_width=tc.width,
                                         text_layers=tc.layers, vocab=tc.vocab_size) if not k.startswith("visual.")}
    assert text == expected


def test_safetensors_fp32_openai_names(small):
    out, state = small
    got = load_file(str(out / "clip.safetensors"))
    sd = torch.jit.load(str(out / "clip.pt"), map_location="cpu").state_dict()
    assert set(got) == set(sd) - {"input_resolution", "context_length", "vocab_size"}
    assert all(v.dtype == torch.float32 for v in got.values())
    assert torch.equal(got["visual.positional_embedding"], state["visual.positional_embedding"])
    for k, v in got.items():  # the same values as the TorchScript file (OpenAI's fp16 weights, widened)
        assert torch.equal(v, sd[k].float()), k


def test_files_json(small):
    out, _ = small
    index = json.loads((out / "files.json").read_text())
    assert set(index["files"]) == {"clip.pt", "clip.safetensors", "clipcap.pt"}
    for name, f in index["files"].items():
        data = (out / name).read_bytes()
        assert f["bytes"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest(), name


def test_from_checkpoint(tmp_path, small):
    from model.model import save_checkpoint
    torch.manual_seed(5)
    model = ClipCap(P.RANDOM["small"])
    save_checkpoint(model, str(tmp_path / "model.pt"))
    P.main(["--from-checkpoint", str(tmp_path / "model.pt"), "--out", str(tmp_path / "pub")])
    got = torch.load(tmp_path / "pub" / "clipcap.pt")
    assert torch.equal(got["clip_project.linear.weight"], model.state_dict()["clip_project.linear.weight"])
    sd = load_file(str(tmp_path / "pub" / "clip.safetensors"))
    # OpenAI published fp16 weights; timm's fp32 file holds those same values, widened, and so does ours
    assert torch.equal(sd["visual.conv1.weight"], model.state_dict()["visual.conv1.weight"].half().float())
    assert torch.equal(sd["visual.ln_post.bias"], model.state_dict()["visual.ln_post.bias"])


def test_full_configs_have_the_official_shapes():
    """The full-size presets (written only for acceptance runs) build models whose keys are the official ones."""
    vit = {k: tuple(v.shape) for k, v in ClipCap(P.RANDOM["full-vit-b32-mlp"]).visual.state_dict().items()}
    assert {"visual." + k: s for k, s in vit.items()} == dict(S.openai_vit(text=False))
    rn = ClipCap(P.RANDOM["full-rn50x4-transformer"])
    assert {"visual." + k: tuple(v.shape) for k, v in rn.visual.state_dict().items()} == dict(S.openai_resnet(text=False))
    cc = P.clipcap_state(rn.state_dict(), 1024)
    assert {k: tuple(v.shape) for k, v in cc.items()} == dict(S.clipcap_transformer())
