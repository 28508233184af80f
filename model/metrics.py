"""Caption metrics: corpus BLEU-4 and CIDEr-D, written from their papers' definitions.

* BLEU: Papineni, Roukos, Ward, Zhu, "BLEU: a Method for Automatic Evaluation of Machine Translation", ACL 2002.
  Corpus level: clipped ("modified") n-gram precisions p_1..p_4 summed over the whole corpus, geometric mean with
  uniform weights, times the brevity penalty BP = exp(1 - r/c) when c <= r, where c is the total candidate length
  and r the "effective reference length": the sum, over sentences, of the reference length closest to the
  candidate's (a tie goes to the shorter reference, as in the COCO caption evaluation code).
  No smoothing: a corpus with no matching 4-gram scores 0, as the paper's formula says.
* CIDEr-D: Vedantam, Zitnick, Parikh, "CIDEr: Consensus-based Image Description Evaluation", CVPR 2015, section 4
  and the CIDEr-D variant of section 8.
  For n = 1..4 each sentence becomes a TF-IDF vector g^n: term frequency times
  log(|I| / number of images whose references contain the n-gram), with the document frequencies taken from the
  references of the corpus being scored. Then, for a candidate c and its m references s_j,

      CIDEr-D_n(c, S) = 10/m * sum_j exp(-(l(c) - l(s_j))^2 / (2 sigma^2)) * <min(g^n(c), g^n(s_j)), g^n(s_j)>
                                                                          / (||g^n(c)|| ||g^n(s_j)||)

  with sigma = 6, l() the length in tokens, and min() element-wise (the clipping that stops a candidate gaining
  by repeating a frequent n-gram). CIDEr-D = mean over n of CIDEr-D_n; the corpus score is the mean over images.
  Term frequency is the raw count, as in the authors' released code (coco-caption): the paper normalises it by the
  sentence's n-gram total, which cancels in the cosine but not inside the clipping, and the published scores
  ClipCap compares against (B4 32.15 / CIDEr 108.35 and 33.53 / 113.08 on COCO Karpathy test) were computed with
  that code. No stemming (CIDEr-D drops it).

Tokenisation (`tokenize`): a simple PTB-style tokeniser standing in for the Stanford PTBTokenizer that COCO's
evaluation runs. It lowercases; splits the clitics 's 't (as n't) 're 've 'll 'd 'm off their word, as PTB does;
turns every other punctuation character into a separator; and drops the punctuation tokens COCO drops. Hyphenated
words therefore split ("t-shirt" -> "t shirt") where CoreNLP would keep them, so scores on real data can differ
from coco-caption's in the last digit; the metric definitions themselves are exact.

    refs = {"img1": ["A dog runs.", "a dog is running"], ...}; hyps = {"img1": "a dog runs", ...}
    bleu = corpus_bleu(hyps, refs)["bleu4"]; cider = cider_d(hyps, refs)["cider_d"]
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Dict, List, Sequence, Tuple

# A word, or a clitic PTB splits off; anything else (punctuation, symbols, whitespace) only separates tokens.
_TOKEN = re.compile(r"n't\b|'(?:s|re|ve|ll|d|m)\b|[a-z0-9]+(?:(?=n't\b))|[a-z0-9]+")


def tokenize(text: str) -> List[str]:
    """Lowercase PTB-style tokens without punctuation: "A man's T-shirt, isn't it?" -> a man 's t shirt is n't it."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _prepare(hyps: Dict[str, str], refs: Dict[str, List[str]]) -> Tuple[List[str], List[List[str]], List[List[List[str]]]]:
    missing = sorted(set(hyps) ^ set(refs))
    assert not missing, f"hypotheses and references must cover the same images; differing ids: {missing[:10]}"
    ids = sorted(hyps)
    for i in ids:
        assert isinstance(hyps[i], str), f"hypothesis for {i!r} must be one string"
        assert len(refs[i]) > 0, f"image {i!r} has no reference captions"
    return ids, [tokenize(hyps[i]) for i in ids], [[tokenize(r) for r in refs[i]] for i in ids]


def corpus_bleu(hyps: Dict[str, str], refs: Dict[str, List[str]], max_n: int = 4) -> Dict[str, float]:
    """Corpus BLEU-1..max_n (each with the brevity penalty), plus the precisions, c and r."""
    _, hyp_toks, ref_toks = _prepare(hyps, refs)
    matches = [0] * max_n
    totals = [0] * max_n
    c = r = 0
    for h, rs in zip(hyp_toks, ref_toks):
        c += len(h)
        r += min((abs(len(x) - len(h)), len(x)) for x in rs)[1]  # closest reference length; ties -> shorter
        for n in range(1, max_n + 1):
            h_counts = _ngrams(h, n)
            max_ref = Counter()
            for x in rs:
                max_ref |= _ngrams(x, n)  # | keeps the max count of each n-gram over the references
            matches[n - 1] += sum(min(k, max_ref[g]) for g, k in h_counts.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    precisions = [m / t if t else 0.0 for m, t in zip(matches, totals)]
    bp = 1.0 if c > r else (math.exp(1 - r / c) if c else 0.0)
    out: Dict[str, float] = {"c": float(c), "r": float(r), "bp": bp}
    for n in range(1, max_n + 1):
        p = precisions[:n]
        out[f"bleu{n}"] = bp * math.exp(sum(math.log(x) for x in p) / n) if min(p) > 0 else 0.0
        out[f"p{n}"] = precisions[n - 1]
    return out


def cider_d(hyps: Dict[str, str], refs: Dict[str, List[str]], sigma: float = 6.0, max_n: int = 4) -> Dict[str, object]:
    """Corpus CIDEr-D (mean over images) and the per-image scores, both on the usual x10 scale."""
    ids, hyp_toks, ref_toks = _prepare(hyps, refs)
    n_images = len(ids)
    # document frequency: in how many images' reference sets each n-gram appears
    df: Counter = Counter()
    for rs in ref_toks:
        df.update(set(g for x in rs for n in range(1, max_n + 1) for g in _ngrams(x, n)))
    log_n_images = math.log(float(n_images))

    def vectors(tokens):  # per n: {ngram: tf * idf}, and its L2 norm
        vecs, norms = [], []
        for n in range(1, max_n + 1):
            v = {g: k * (log_n_images - math.log(max(1.0, df[g]))) for g, k in _ngrams(tokens, n).items()}
            vecs.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        return vecs, norms

    per_image = {}
    for i, h, rs in zip(ids, hyp_toks, ref_toks):
        hv, hn = vectors(h)
        score_n = [0.0] * max_n
        for x in rs:
            rv, rn = vectors(x)
            penalty = math.exp(-((len(h) - len(x)) ** 2) / (2 * sigma ** 2))
            for n in range(max_n):
                if hn[n] == 0 or rn[n] == 0:
                    continue
                dot = sum(min(val, rv[n].get(g, 0.0)) * rv[n].get(g, 0.0) for g, val in hv[n].items())
                score_n[n] += penalty * dot / (hn[n] * rn[n])
        per_image[i] = 10.0 * sum(s / len(rs) for s in score_n) / max_n
    return {"cider_d": sum(per_image.values()) / n_images, "per_image": per_image}


def evaluate(hyps: Dict[str, str], refs: Dict[str, List[str]]) -> Dict[str, float]:
    """The two headline numbers, in the units papers print them (x100 for BLEU-4, x100 for CIDEr-D)."""
    return {"bleu4": 100.0 * corpus_bleu(hyps, refs)["bleu4"], "cider_d": 100.0 * cider_d(hyps, refs)["cider_d"]}


def load_coco_references(captions_json: str) -> Dict[str, List[str]]:
    """COCO-format captions JSON -> {image file name: [captions]} (image ids are mapped through `images`)."""
    import json
    with open(captions_json) as f:
        data = json.load(f)
    assert "annotations" in data and "images" in data, f"{captions_json}: not COCO format (needs images and annotations)"
    names = {im["id"]: im["file_name"] for im in data["images"]}
    refs: Dict[str, List[str]] = {}
    for a in data["annotations"]:
        assert a["image_id"] in names, f"{captions_json}: annotation {a.get('id')} names unknown image {a['image_id']}"
        refs.setdefault(names[a["image_id"]], []).append(a["caption"])
    return refs
