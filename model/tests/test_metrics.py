"""model/metrics.py on small examples worked out by hand from the BLEU and CIDEr-D papers' definitions."""
import json
import math

import pytest

from model.metrics import cider_d, corpus_bleu, evaluate, load_coco_references, tokenize


def test_tokenize_is_ptb_like():
    assert tokenize("A man's T-shirt, isn't it?") == ["a", "man", "'s", "t", "shirt", "is", "n't", "it"]
    assert tokenize("Two dogs  can't   play.") == ["two", "dogs", "ca", "n't", "play"]
    assert tokenize("...") == []


def test_bleu_modified_unigram_precision_example_from_the_paper():
    # Papineni et al. 2002, section 2.1: "the the the the the the the" scores 2/7 against these references.
    refs = {"x": ["The cat is on the mat.", "There is a cat on the mat."]}
    out = corpus_bleu({"x": "the the the the the the the"}, refs)
    assert out["p1"] == pytest.approx(2 / 7)
    assert out["bleu4"] == 0.0, "no matching 4-gram: unsmoothed BLEU is 0"


def test_bleu4_by_hand():
    # hyp (7 tokens) against two references of 6 and 8 tokens: both 1 away, the tie goes to the shorter, r = 6 < c = 7,
    # so BP = 1.  Matches: 1-grams 7/7; 2-grams 6/6; 3-grams 4/5 ("small cat sat" is in neither reference);
    # 4-grams 2/4 ("cat sat on the", "sat on the mat").  BLEU-4 = (1 * 1 * 4/5 * 2/4) ** (1/4).
    refs = {"x": ["A cat sat on the mat.", "There is a small cat on the mat"]}
    out = corpus_bleu({"x": "a small cat sat on the mat"}, refs)
    assert (out["c"], out["r"], out["bp"]) == (7, 6, 1.0)
    assert [out[f"p{n}"] for n in range(1, 5)] == pytest.approx([1, 1, 4 / 5, 2 / 4])
    assert out["bleu4"] == pytest.approx((4 / 5 * 2 / 4) ** 0.25)


def test_bleu_brevity_penalty_and_corpus_sums():
    # "a cat" (c = 2) against a 6-token reference: BP = exp(1 - 6/2) = e^-2, and p1 = p2 = 1.
    out = corpus_bleu({"x": "a cat"}, {"x": ["a cat sat on the mat"]})
    assert out["bleu2"] == pytest.approx(math.exp(-2))
    # Corpus level sums counts BEFORE dividing: (2 + 1) / (2 + 2) unigrams, not the mean of 1 and 1/2.
    out = corpus_bleu({"x": "a cat", "y": "a dog"}, {"x": ["a cat"], "y": ["one dog"]})
    assert out["p1"] == pytest.approx(3 / 4)


def test_cider_d_by_hand():
    # Two images, so idf = log(2 / df); "a" is in both images' references: idf 0.  L = log 2.
    # img1: hyp "a dog dog", ref "a dog runs".
    #   n=1: hyp {a: 0, dog: 2L}, ref {a: 0, dog: L, runs: L}; clipped dot = min(2L, L) * L = L^2;
    #        norms 2L and sqrt(2) L  ->  1 / (2 sqrt 2).  (Unclipped it would be 2L^2: the clipping halves it.)
    #   n=2: hyp {a dog: L, dog dog: L} ("dog dog" is in no reference: df 0 counts as 1), ref {a dog: L, dog runs: L}
    #        -> L^2 / (sqrt2 L * sqrt2 L) = 1/2.
    #   n=3: "a dog dog" is not in the reference -> 0; n=4: no 4-grams -> 0.  Same length: no penalty.
    # img2: hyp "a cat", ref "a cat sleeps": n=1 and n=2 both L^2 / (L * sqrt2 L) = 1/sqrt2; n=3, 4: 0;
    #        length 2 vs 3: penalty exp(-1 / (2 * 36)).
    img1 = 10 * (1 / (2 * math.sqrt(2)) + 1 / 2) / 4
    img2 = 10 * math.exp(-1 / 72) * (2 / math.sqrt(2)) / 4
    out = cider_d({"1": "a dog dog", "2": "a cat"}, {"1": ["a dog runs"], "2": ["a cat sleeps"]})
    assert out["per_image"]["1"] == pytest.approx(img1)
    assert out["per_image"]["2"] == pytest.approx(img2)
    assert out["cider_d"] == pytest.approx((img1 + img2) / 2)


def test_cider_d_averages_over_references_and_perfect_match():
    # One image identical to its single reference: cosine 1 for n = 1, 2 (the only n-grams it has), 0 for n = 3, 4.
    # With a second, different image so that idf is not zero everywhere.
    out = cider_d({"1": "a dog", "2": "a cat"}, {"1": ["a dog"], "2": ["a cat"]})
    assert out["per_image"]["1"] == pytest.approx(10 * 2 / 4)
    # A second reference that shares nothing scores 0 and halves the mean over references.
    out2 = cider_d({"1": "a dog", "2": "a cat"}, {"1": ["a dog", "one horse"], "2": ["a cat"]})
    assert out2["per_image"]["1"] == pytest.approx(10 * 2 / 4 / 2)


def test_evaluate_and_coco_loader(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [{"id": 10, "image_id": 1, "caption": "A brown dog runs on the grass."},
                            {"id": 11, "image_id": 2, "caption": "A cat sleeps on a red sofa."},
                            {"id": 12, "image_id": 1, "caption": "a dog is running"}]}
    p = tmp_path / "val.json"
    p.write_text(json.dumps(coco))
    refs = load_coco_references(str(p))
    assert refs == {"a.jpg": ["A brown dog runs on the grass.", "a dog is running"], "b.jpg": ["A cat sleeps on a red sofa."]}
    scores = evaluate({"a.jpg": "a brown dog runs on the grass", "b.jpg": "A cat sleeps on a red sofa"}, refs)
    assert scores["bleu4"] == pytest.approx(100.0)
    assert scores["cider_d"] > 0
    with pytest.raises(AssertionError, match="same images"):
        evaluate({"a.jpg": "x"}, refs)
