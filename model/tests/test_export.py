"""Export parity: the ONNX graphs, run by onnxruntime-node, against PyTorch; and the pack's own integrity."""

import json
import os
import shutil

import onnx
import pytest

from model.export import ASSUMED_TEXT_MANIFEST, ExportError, export_pack, verify_pack
from model.golden import check_parity
from model.model import load_checkpoint


def _print_parity(name, r):
    print(f"\n{name}: max |embeds| diff {r['max_embeds_diff']:.2e}, |prefix| {r['max_prefix_diff']:.2e}, "
          f"|logits| {r['max_logits_diff']:.2e}; greedy identical {r['greedy_identical']}/{r['count']}, "
          f"beam identical {r['beam_identical']}/{r['count']}")


def _text_manifest(pack_dir):
    """What a builder gave export_pack for the pack's text tower (None without one), to export it again."""
    text = json.load(open(os.path.join(pack_dir, "pack.json"))).get("text")
    return None if text is None else {k: text[k] for k in ("rerankWeight", "gateThreshold", "calibration")}


def test_small_random_pack_parity(small_random_pack):
    out, report = small_random_pack
    r = report["precisions"]["fp32"]
    _print_parity("small-random fp32", r)
    assert r["count"] == 3
    assert r["greedy_identical"] == r["count"] and r["beam_identical"] == r["count"]
    assert r["max_embeds_diff"] < 1e-4 and r["max_prefix_diff"] < 1e-4 and r["max_logits_diff"] < 1e-3
    # its text tower: ONNX text embeddings and CLIP scores as PyTorch's, and the same re-ranked beam
    assert r["max_text_embeds_diff"] < 1e-4 and r["max_clip_score_diff"] < 1e-5
    assert r["rerank_count"] == 3 and r["reranked_identical"] == 3
    golden = json.load(open(os.path.join(out, "golden.json")))
    # the random decoder must make a real test: varied tokens, not one token repeated everywhere
    assert len({t for e in golden["images"] for t in e["greedy"]["tokenIds"]}) >= 6


def test_toy_pack_parity(toy_pack):
    model = load_checkpoint(os.path.join(os.path.dirname(toy_pack), ".build", "toy", "model.pt"))
    r = check_parity(toy_pack, model)
    _print_parity("toy fp32", r)
    assert r["count"] >= 4
    assert r["greedy_identical"] == r["count"] and r["beam_identical"] == r["count"]
    assert r["max_logits_diff"] < 1e-3


def test_toy_pack_verifies_and_reaches_target(toy_pack):
    manifest = verify_pack(toy_pack)
    text = {"text", "textTokenizer"} if "text" in manifest else set()  # both files exactly when the text section is
    assert manifest["formatVersion"] == 1
    assert set(manifest["files"]) == {"vision", "mapper", "decoder", "tokenizer"} | text
    report = json.load(open(os.path.join(toy_pack, "report.json")))
    caps = json.load(open(os.path.join(toy_pack, "heldout", "captions.json")))
    assert len(caps) >= 200 and report["heldout"] == len(caps)
    assert report["exact_match"] >= 0.95, report["misses"][:5]


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precisions_keep_tokens(toy_pack, small_random_pack, tmp_path, precision):
    # Token identity is judged on the trained toy model: random weights are chaotic enough that any rounding flips
    # some tokens (npm run bench:peers measures that on the full-size random pack).
    model = load_checkpoint(os.path.join(os.path.dirname(toy_pack), ".build", "toy", "model.pt"))
    d = str(tmp_path / precision)
    m = export_pack(model, d, f"toy-{precision}", precision, precision, beams=5, max_tokens=20,
                    text_manifest=_text_manifest(toy_pack))
    fp32_bytes = json.load(open(os.path.join(toy_pack, "pack.json")))["files"]["decoder"]["bytes"]
    # fp16 halves every weight; int8 quarters them, the tied token table included
    assert m["files"]["decoder"]["bytes"] < (0.55 if precision == "fp16" else 0.35) * fp32_bytes
    r = check_parity(d, model, golden_dir=toy_pack)
    _print_parity(f"toy {precision}", r)
    assert r["greedy_identical"] == r["count"] and r["beam_identical"] == r["count"], r["images"]


def test_int8_stores_the_tied_token_table_once_as_int8(small_random_pack, tmp_path):
    out, _ = small_random_pack
    model = load_checkpoint(os.path.join(os.path.dirname(out), ".build", "small-random", "model.pt"))
    d = str(tmp_path / "int8")
    export_pack(model, d, "small-int8", "small-int8", "int8", text_manifest=ASSUMED_TEXT_MANIFEST)
    for role in ("vision", "mapper", "decoder", "text"):
        ops = [n.op_type for n in onnx.load(os.path.join(d, f"{role}.onnx")).graph.node]
        assert "MatMulInteger" in ops, role
    g = onnx.load(os.path.join(d, "decoder.onnx")).graph
    V, E = model.cfg.gpt2.vocab_size, model.cfg.gpt2.n_embd
    tables = [(i.name, i.data_type) for i in g.initializer if list(i.dims) in ([V, E], [E, V])]
    assert tables == [("gpt.transformer.wte.weight_q", onnx.TensorProto.INT8)], tables
    head = [n for n in g.node if n.op_type == "MatMulInteger" and "gpt.transformer.wte.weight_qT" in n.input]
    embedding = [n for n in g.node if n.op_type == "Gather" and n.input[0] == "gpt.transformer.wte.weight_q"]
    assert len(head) == 1 and len(embedding) == 1 and not any(n.op_type == "Gemm" for n in g.node)
    # the text tower's token table (a Gather only) is int8 rows with a scale each, stored once
    t = onnx.load(os.path.join(d, "text.onnx")).graph
    tables = [(i.name, i.data_type) for i in t.initializer if list(i.dims) == [49408, model.cfg.text.width]]
    assert tables == [("model.text.token_embedding.weight_q", onnx.TensorProto.INT8)], tables
    # the graph still computes GPT-2: the JSON runner's logits stay close to PyTorch's on the golden inputs
    r = check_parity(d, model, golden_dir=out, limit=1)
    assert r["max_embeds_diff"] < 0.5 and r["max_prefix_diff"] < 0.5, r
    print(f"\nsmall-random int8 text tower: max |text_embeds| diff {r['max_text_embeds_diff']:.2e}, "
          f"|clipScore| {r['max_clip_score_diff']:.2e}")
    assert r["max_text_embeds_diff"] < 0.5 and r["max_clip_score_diff"] < 0.1, r


def test_tampered_pack_is_refused(small_random_pack, tmp_path):
    out, _ = small_random_pack
    d = str(tmp_path / "copy")
    shutil.copytree(out, d)
    with open(os.path.join(d, "mapper.onnx"), "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ExportError, match="mapper file mapper.onnx does not match pack.json"):
        verify_pack(d)
    with open(os.path.join(d, "decoder.onnx"), "ab") as f:
        f.truncate(1000)
    with pytest.raises(ExportError, match="does not match"):
        verify_pack(d)


def test_unknown_precision_is_named(small_random_pack, tmp_path):
    out, _ = small_random_pack
    model = load_checkpoint(os.path.join(os.path.dirname(out), ".build", "small-random", "model.pt"))
    with pytest.raises(ExportError, match="unknown precision 'int4'"):
        export_pack(model, str(tmp_path / "x"), "x", "x", "int4")


def test_decoder_stores_the_token_table_once(small_random_pack):
    import onnx
    import numpy as np

    out, _ = small_random_pack
    m = onnx.load(os.path.join(out, "decoder.onnx"))
    big = [i for i in m.graph.initializer if 50257 in i.dims and len(i.dims) == 2]
    assert len(big) == 1, [(i.name, list(i.dims)) for i in big]
