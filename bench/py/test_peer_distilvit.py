"""The distilvit-style peer (bench/py/peer_distilvit.py): the folder transformers.js's own image-to-text pipeline loads
must greedy-decode exactly what the PyTorch model decodes from the same pixels."""

import collections
import json
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from bench.py.peer_distilvit import SIZES, build, random_peer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(REPO, "bench", "peer-check.mjs")
SEED = 3


def _node_ready():
    mods = os.path.join(REPO, "node_modules")
    missing = [p for p in ("@huggingface/transformers", "onnxruntime-web") if not os.path.isdir(os.path.join(mods, p))]
    if missing:
        return f"node_modules lacks {', '.join(missing)}: run `npm ci` in the repository root"
    if shutil.which("node") is None:
        return "node is not on PATH"
    return None


@pytest.fixture(scope="module")
def tiny_peer(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("peer") / "peer-tiny")
    report = build(out, "tiny", ["fp32", "int8"], cross_kv="both", seed=SEED)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1) + rng.normal(0, 20, (48, 64, 3))
    image = os.path.join(os.path.dirname(out), "image.png")
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(image)
    return report, image


def _run_check(model_dir, image, dtype, pixels_out=None):
    cmd = ["node", CHECK, "--model", model_dir, "--image", image, "--dtype", dtype, "--max-new-tokens", "16"]
    if pixels_out:
        cmd += ["--pixels-out", pixels_out]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"peer-check.mjs failed:\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_folder_layout(tiny_peer):
    report, _ = tiny_peer
    files = report["variants"]["cached"]["files"]
    for name in ("config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
                 "tokenizer_config.json", "onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx",
                 "onnx/encoder_model_quantized.onnx", "onnx/decoder_model_merged_quantized.onnx"):
        assert name in files, f"{name} missing from the peer folder"
    d = report["variants"]["cached"]["dir"]
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "vision-encoder-decoder" and cfg["decoder"]["add_cross_attention"]


@pytest.mark.parametrize("variant", ["cached", "recompute"])
def test_merged_decoder_structure(tiny_peer, variant):
    """use_cache_branch picks the with-past branch; only the recompute variant projects the image tokens to
    cross-attention K/V there, and the int8 file quantises the MatMuls inside both branches."""
    report, _ = tiny_peer
    d = report["variants"][variant]["dir"]
    L = SIZES["tiny"].n_layer
    # int8 products per branch: 7 weights per block (q, k/v, proj of self- and cross-attention, 2 MLP; the image
    # K/V projection only where the branch computes it) plus the LM head
    extra_mmi = {"cached": {"then_branch": 6 * L + 1, "else_branch": 7 * L + 1},
                 "recompute": {"then_branch": 7 * L + 1, "else_branch": 7 * L + 1}}
    g = onnx.load(os.path.join(d, "onnx", "decoder_model_merged.onnx")).graph
    assert [n.op_type for n in g.node] == ["If"]
    assert {i.name for i in g.input} == {"input_ids", "encoder_hidden_states", "use_cache_branch",
                                         *[f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")]}
    branches = {a.name: collections.Counter(n.op_type for n in a.g.node) for a in g.node[0].attribute}
    extra = branches["else_branch"]["MatMul"] - branches["then_branch"]["MatMul"]
    assert extra == (L if variant == "cached" else 0), f"with-past branch has {extra} fewer MatMuls than the first step"
    gq = onnx.load(os.path.join(d, "onnx", "decoder_model_merged_quantized.onnx")).graph
    (if_node,) = [n for n in gq.node if n.op_type == "If"]
    for a in if_node.attribute:
        ops = collections.Counter(n.op_type for n in a.g.node)
        assert ops["MatMulInteger"] == extra_mmi[variant][a.name], f"{a.name}: {ops['MatMulInteger']} MatMulInteger"
        assert ops["MatMul"] == 4 * L, f"{a.name}: only the attention products stay fp32"
    # the tied token table is stored once, int8, and the LM head's transpose of it sits in the outer graph
    assert [n.op_type for n in gq.node] == ["Transpose", "If"]
    assert not any(i.name == "decoder.wte.weight" for i in gq.initializer)


def test_transformersjs_greedy_matches_pytorch(tiny_peer, tmp_path):
    why = _node_ready()
    if why:
        pytest.skip(why)
    report, image = tiny_peer
    cfg = SIZES["tiny"]
    model = random_peer(cfg, SEED)
    for variant in ("cached", "recompute"):
        d = report["variants"][variant]["dir"]
        pixels = str(tmp_path / f"{variant}.f32")
        got = _run_check(d, image, "fp32", pixels)
        px = np.fromfile(pixels, dtype=np.float32).reshape(got["pixelValues"]["dims"])
        assert px.shape == (1, 3, cfg.image_size, cfg.image_size) and -1.0 <= px.min() and px.max() <= 1.0
        want = model.greedy(torch.from_numpy(px), max_new_tokens=16)
        assert len(set(want[1:])) > 1, f"the random weights repeat one token forever: {want}"
        assert got["ids"] == want, f"{variant}: transformers.js {got['ids']} != PyTorch {want}"
    # int8: no exact match expected (random wide weights amplify the quantisation error); it must load and decode
    q8 = _run_check(report["variants"]["cached"]["dir"], image, "q8")["ids"]
    assert len(q8) >= 2 and all(0 <= t < cfg.vocab_size for t in q8)
    agreement = sum(a == b for a, b in zip(q8[1:], want[1:])) / (len(want) - 1)
    print(f"int8 (q8) greedy tokens equal to fp32 at the same position: {agreement:.2f}")
