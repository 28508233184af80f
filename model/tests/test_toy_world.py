"""Toy world: determinism, caption vocabulary, and shapes that survive CLIP's shortest-edge resize + centre crop."""

from __future__ import annotations

import collections
import io
import json
import time
from pathlib import Path

import numpy as np

from model import toy_world as tw


def _png_bytes(spec: tw.ToySpec) -> bytes:
    buf = io.BytesIO()
    tw.render(spec).save(buf, format="PNG")
    return buf.getvalue()


def test_same_seed_same_bytes_other_seed_other_images() -> None:
    a, b = tw.sample_specs(40, seed=7, split="train"), tw.sample_specs(40, seed=7, split="train")
    assert a == b
    assert [_png_bytes(s) for s in a] == [_png_bytes(s) for s in b]
    assert tw.sample_specs(40, seed=8, split="train") != a
    assert tw.sample_specs(40, seed=7, split="heldout") != a


def test_prefix_stable() -> None:
    assert tw.sample_specs(10, seed=3, split="train") == tw.sample_specs(300, seed=3, split="train")[:10]


def test_captions() -> None:
    assert len(set(tw.ALL_CAPTIONS)) == len(tw.ALL_CAPTIONS) >= 50
    for c in tw.ALL_CAPTIONS:
        assert c == c.lower() and c.endswith(".") and c.count(".") == 1, c
    assert "a red circle on a white background." in tw.ALL_CAPTIONS
    assert "an orange star on a grey background." in tw.ALL_CAPTIONS
    # Never the same colour for shape and background.
    assert all(colour != background for _, colour, background in tw.COMBOS)
    specs = tw.sample_specs(500, seed=0, split="train")
    assert {tw.caption(s) for s in specs} <= set(tw.ALL_CAPTIONS)


def test_balanced_over_combinations() -> None:
    n_combos = len(tw.COMBOS)
    specs = tw.sample_specs(3 * n_combos + 5, seed=1, split="train")
    counts = collections.Counter((s.shape, s.colour, s.background) for s in specs)
    assert set(counts) == set(tw.COMBOS)
    assert min(counts.values()) >= 3 and max(counts.values()) <= 4


def test_shape_inside_central_square_and_visible() -> None:
    for spec in tw.sample_specs(400, seed=0, split="train"):
        img = np.asarray(tw.render(spec))
        assert img.shape == (spec.height, spec.width, 3), spec
        x0, y0, side = tw.central_square(spec.width, spec.height)
        background = np.array(tw.BACKGROUNDS[spec.background], dtype=np.uint8)
        outside = np.ones(img.shape[:2], dtype=bool)
        outside[y0 : y0 + side, x0 : x0 + side] = False
        assert (img[outside] == background).all(), f"shape leaks outside the central square: {spec}"
        # The shape is really there, and takes a sensible share of the square.
        share = (img != background).any(axis=2).mean() * img.shape[0] * img.shape[1] / side**2
        assert 0.03 < share < 0.6, f"shape covers {share:.2f} of the central square: {spec}"


def test_sizes_and_aspect_ratios_vary() -> None:
    specs = tw.sample_specs(300, seed=0, split="train")
    widths, heights = {s.width for s in specs}, {s.height for s in specs}
    assert len(widths) > 30 and len(heights) > 30
    lo, hi = tw.SIZE_RANGE
    assert all(lo <= s.width <= hi and lo <= s.height <= hi for s in specs)
    aspects = [s.width / s.height for s in specs]
    assert max(aspects) > 1.5 and min(aspects) < 1 / 1.5 and max(max(aspects), 1 / min(aspects)) <= tw.MAX_ASPECT
    fractions = [s.size / min(s.width, s.height) for s in specs]
    assert min(fractions) >= tw.SHAPE_FRACTION[0] and max(fractions) <= tw.SHAPE_FRACTION[1]
    assert max(fractions) - min(fractions) > 0.25


def test_write_split(tmp_path: Path) -> None:
    specs = tw.sample_specs(12, seed=0, split="heldout")
    captions = tw.write_split(tmp_path, specs)
    assert json.loads((tmp_path / "captions.json").read_text(encoding="utf-8")) == captions
    assert sorted(captions) == [f"{i:05d}.png" for i in range(12)]
    assert captions["00003.png"] == tw.caption(specs[3])
    assert (tmp_path / "00003.png").read_bytes() == _png_bytes(specs[3])


def test_render_is_fast() -> None:
    specs = tw.sample_specs(500, seed=0, split="train")
    t0 = time.perf_counter()
    for spec in specs:
        tw.render(spec)
    # About 0.4 ms an image here; 5,000 must take well under a minute even on a loaded CI core.
    assert time.perf_counter() - t0 < 5.0


# -----------------------------------------------------------------------------
# Out-of-distribution images


def _ood_png(spec: tw.OodSpec) -> bytes:
    buf = io.BytesIO()
    tw.render_ood(spec).save(buf, format="PNG")
    return buf.getvalue()


def test_ood_same_seed_same_bytes_other_seed_other_images() -> None:
    a, b = tw.sample_ood_specs(30, seed=5), tw.sample_ood_specs(30, seed=5)
    assert a == b
    assert [_ood_png(s) for s in a] == [_ood_png(s) for s in b]
    other = tw.sample_ood_specs(30, seed=6)
    assert other != a and [_ood_png(s) for s in other] != [_ood_png(s) for s in a]


def test_ood_covers_every_kind_and_variant() -> None:
    specs = tw.sample_ood_specs(120, seed=0)
    counts = collections.Counter(s.kind for s in specs)
    assert set(counts) == set(tw.OOD_KINDS)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert {s.shape for s in specs if s.kind == "unseen-shape"} == set(tw.OOD_SHAPES)
    assert {s.colour for s in specs if s.kind == "unseen-colour"} == set(tw.OOD_COLOURS)
    assert {s.detail for s in specs if s.kind == "noise"} == {"uniform noise", "gaussian noise", "grey noise"}


def test_ood_never_an_in_distribution_combination() -> None:
    for spec in tw.sample_ood_specs(120, seed=0):
        assert (spec.shape, spec.colour, spec.background) not in tw.COMBOS, spec
        if spec.kind == "unseen-shape":
            assert spec.shape not in tw.SHAPES and spec.colour in tw.COLOURS and spec.colour != spec.background
        elif spec.kind == "unseen-colour":
            assert spec.shape in tw.SHAPES and spec.colour not in tw.COLOURS and spec.background in tw.BACKGROUNDS
    # Unseen colours are far from every known one, so the truth is not a near-miss the model may rightly call red.
    for rgb in tw.OOD_COLOURS.values():
        assert min(np.linalg.norm(np.subtract(rgb, known)) for known in tw.COLOURS.values()) > 90


def test_ood_images_have_their_size_and_show_something() -> None:
    for spec in tw.sample_ood_specs(60, seed=1):
        img = np.asarray(tw.render_ood(spec))
        assert img.shape == (spec.height, spec.width, 3), spec
        assert img.reshape(-1, 3).std(axis=0).max() > 10, f"a flat image is not a test of anything: {spec}"
        if spec.kind in ("unseen-shape", "unseen-colour"):  # drawn inside the central square, like the toy world
            x0, y0, side = tw.central_square(spec.width, spec.height)
            outside = np.ones(img.shape[:2], dtype=bool)
            outside[y0 : y0 + side, x0 : x0 + side] = False
            assert (img[outside] == tw.BACKGROUNDS[spec.background]).all(), spec


def test_write_ood_split(tmp_path: Path) -> None:
    kinds = tw.write_ood_split(tmp_path, 14, seed=0)
    specs = tw.sample_ood_specs(14, seed=0)
    assert json.loads((tmp_path / "kinds.json").read_text(encoding="utf-8")) == kinds
    assert sorted(kinds) == [f"{i:05d}.png" for i in range(14)]
    assert kinds["00004.png"] == {"kind": specs[4].kind, "detail": specs[4].detail}
    assert (tmp_path / "00004.png").read_bytes() == _ood_png(specs[4])
