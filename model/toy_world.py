"""The toy world: flat coloured shapes on plain backgrounds, with captions that follow from what is drawn.

Why: no pretrained weights can be downloaded here, yet every layer above the model (engine, extension, tests) needs a
pack that really captions. A small ClipCap trained on this world can, because the caption is an exact function of
three visible attributes: "a red circle on a white background.", "an orange star on a grey background.".

Everything is deterministic: specs come from a seeded `random.Random` (never global state), rendering uses only PIL
drawing and integer box downsampling, and PNG encoding carries no timestamps. Same seed, same bytes.

The model preprocesses like CLIP: scale the SHORTER side to the model size, then centre-crop a square. So the shape is
always drawn entirely inside the image's central square (the largest centred square), with a margin, and position
jitter moves it only within that square. Everything outside it is pure background, so cropping never cuts the shape.
"""

from __future__ import annotations

import json
import math
import random
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

# Shape colours. Chosen far apart in RGB so a small model (and a human) never confuses two of them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 0),
    "yellow": (250, 220, 20),
    "green": (30, 160, 50),
    "blue": (30, 80, 230),
    "purple": (140, 50, 180),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
# Backgrounds: neutral, so every shape colour stands out on each, except the same-colour pairs that `is_valid` skips.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "diamond", "cross")

SIZE_RANGE = (48, 160)  # image width and height, pixels (inclusive)
MAX_ASPECT = 2.0  # longer side / shorter side
SHAPE_FRACTION = (0.50, 0.80)  # shape diameter / central-square side: at the model's 64 px, 4 to 6 patches across
MARGIN_FRACTION = 0.04  # clear band inside the central square's edge, / its side
MAX_ROTATION = 10.0  # degrees either way: more would turn a square into a diamond and a cross into an "x"
SUPERSAMPLE = 4  # draw at 4x, then box-average down: mild anti-aliasing that never leaks outside the shape's box


@dataclass(frozen=True)
class ToySpec:
    """Everything needed to draw one image. Coordinates are pixels of the final image, origin top-left."""

    shape: str  # one of SHAPES
    colour: str  # key of COLOURS
    background: str  # key of BACKGROUNDS
    width: int  # image width
    height: int  # image height
    cx: float  # shape centre, x
    cy: float  # shape centre, y
    size: float  # diameter of the circle that encloses the shape
    rotation: float  # degrees, counter-clockwise


def is_valid(shape: str, colour: str, background: str) -> bool:
    """True for a drawable combination: known attributes, and a shape colour that differs from its background."""
    return shape in SHAPES and colour in COLOURS and background in BACKGROUNDS and colour != background


# Every valid (shape, colour, background), in a fixed order.
COMBOS: tuple[tuple[str, str, str], ...] = tuple(
    (s, c, b) for s in SHAPES for c in COLOURS for b in BACKGROUNDS if is_valid(s, c, b)
)


def caption_for(shape: str, colour: str, background: str) -> str:
    """The one true caption of a combination: lower case, ending with "."; "an" before a vowel sound."""
    article = "an" if colour[0] in "aeiou" else "a"
    return f"{article} {colour} {shape} on a {background} background."


def caption(spec: ToySpec) -> str:
    """The caption of a spec; it depends only on shape, colour and background."""
    return caption_for(spec.shape, spec.colour, spec.background)


ALL_CAPTIONS: tuple[str, ...] = tuple(caption_for(*combo) for combo in COMBOS)
assert len(set(ALL_CAPTIONS)) == len(ALL_CAPTIONS) >= 50, "toy world: captions must be distinct and at least 50"


def central_square(width: int, height: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the largest centred square: what a shortest-edge resize plus centre crop keeps.

    Rounded the way a centre crop of the resized image rounds (offset = floor of half the excess).
    """
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """Vertices of a shape centred at 0, scaled so its farthest vertex is at distance 1 (y points down)."""
    if shape == "square":
        pts = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]
    elif shape == "triangle":  # equilateral, pointing up
        pts = [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in (-90, 30, 150)]
    elif shape == "hexagon":
        pts = [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in range(0, 360, 60)]
    elif shape == "star":  # five points, inner radius 0.45
        pts = [
            ((1.0 if k % 2 == 0 else 0.45) * math.cos(math.radians(-90 + 36 * k)),
             (1.0 if k % 2 == 0 else 0.45) * math.sin(math.radians(-90 + 36 * k)))
            for k in range(10)
        ]
    elif shape == "diamond":  # a rhombus, narrower than tall, so that it never looks like a square
        pts = [(0.0, -1.0), (0.6, 0.0), (0.0, 1.0), (-0.6, 0.0)]
    elif shape == "cross":  # a plus sign with arms a third as wide as long
        w = 0.33
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w),
               (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
    else:
        raise ValueError(f"no polygon for shape {shape!r}; known shapes: {SHAPES}")
    scale = max(math.hypot(x, y) for x, y in pts)
    return [(x / scale, y / scale) for x, y in pts]


_UNIT_POLYGONS = {s: _unit_polygon(s) for s in SHAPES if s != "circle"}


def render(spec: ToySpec) -> Image.Image:
    """Draw a spec as an RGB image of exactly (spec.width, spec.height).

    Drawn at SUPERSAMPLE x, then box-averaged down (`Image.reduce`), so edges are anti-aliased and every pixel whose
    box the shape does not touch stays exactly the background colour.
    """
    assert is_valid(spec.shape, spec.colour, spec.background), f"invalid combination in {spec}"
    return _render_shape(spec.shape, COLOURS[spec.colour], BACKGROUNDS[spec.background], spec)


def _render_shape(shape: str, fill: tuple[int, int, int], background: tuple[int, int, int], geo) -> Image.Image:
    """Draw `shape` (a known one, or one of OOD_SHAPES) with `geo`'s size, position and rotation."""
    k = SUPERSAMPLE
    img = Image.new("RGB", (geo.width * k, geo.height * k), background)
    draw = ImageDraw.Draw(img)
    cx, cy, r = geo.cx * k, geo.cy * k, geo.size / 2 * k
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        draw.ellipse((cx - 0.6 * r, cy - 0.6 * r, cx + 0.6 * r, cy + 0.6 * r), fill=background)
    elif shape == "crescent":  # a disc with an offset disc of background bitten out of it
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        off = 0.45 * r
        draw.ellipse((cx - r + off, cy - r - off * 0.3, cx + r + off, cy + r - off * 0.3), fill=background)
    else:
        cos_t, sin_t = math.cos(math.radians(geo.rotation)), math.sin(math.radians(geo.rotation))
        # Counter-clockwise on screen, where y points down.
        pts = [
            (cx + r * (x * cos_t + y * sin_t), cy + r * (-x * sin_t + y * cos_t))
            for x, y in (_UNIT_POLYGONS.get(shape) or _OOD_POLYGONS[shape])
        ]
        draw.polygon(pts, fill=fill)
    return img.reduce(k)


def _split_seed(seed: int, split: str) -> int:
    """A seed per (seed, split), so train and held-out images differ; crc32 is stable across runs, unlike hash()."""
    return (seed * 1_000_003 + zlib.crc32(split.encode("utf-8"))) & 0xFFFFFFFF


def _sample_size(rng: random.Random) -> tuple[int, int]:
    """Width and height, each in SIZE_RANGE, with aspect ratio at most MAX_ASPECT (rejection sampling)."""
    lo, hi = SIZE_RANGE
    while True:
        w, h = rng.randint(lo, hi), rng.randint(lo, hi)
        if max(w, h) <= MAX_ASPECT * min(w, h):
            return w, h


def sample_specs(n: int, seed: int, split: str = "train") -> list[ToySpec]:
    """`n` random specs, deterministic in (seed, split).

    Balanced: the valid combinations are dealt out in shuffled rounds, so each appears n/len(COMBOS) times, +-1.
    Prefix-stable: sample_specs(k, s, split) == sample_specs(n, s, split)[:k] for k <= n.
    Size and position are jittered so the shape, plus a margin, stays inside the central square.
    """
    assert n >= 0, f"n must be >= 0, got {n}"
    rng = random.Random(_split_seed(seed, split))
    specs: list[ToySpec] = []
    round_: list[tuple[str, str, str]] = []
    for _ in range(n):
        if not round_:  # deal lazily, so the first k specs are the same whatever n is
            round_ = list(COMBOS)
            rng.shuffle(round_)
        shape, colour, background = round_.pop()
        width, height = _sample_size(rng)
        specs.append(ToySpec(shape, colour, background, width, height, *_place(rng, width, height, shape)))
    return specs


def _place(rng: random.Random, width: int, height: int, shape: str) -> tuple[float, float, float, float]:
    """(cx, cy, size, rotation) with the shape, plus a margin, inside the central square; rounded so JSON is exact."""
    x0, y0, side = central_square(width, height)
    size = side * rng.uniform(*SHAPE_FRACTION)
    # The farthest the centre may move from the square's centre, keeping the enclosing circle + margin inside.
    slack = max(0.0, side / 2 - size / 2 - side * MARGIN_FRACTION)
    cx = x0 + side / 2 + rng.uniform(-slack, slack)
    cy = y0 + side / 2 + rng.uniform(-slack, slack)
    rotation = 0.0 if shape in ("circle", "ring") else rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    return round(cx, 3), round(cy, 3), round(size, 3), round(rotation, 3)


def write_split(out_dir: str | Path, specs: Sequence[ToySpec], prefix: str = "") -> dict[str, str]:
    """Render `specs` as PNGs named `{prefix}{index:05d}.png` in out_dir, plus `captions.json` {file name: caption}.

    Returns the captions mapping. An existing captions.json in out_dir is replaced (not merged).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    captions: dict[str, str] = {}
    for i, spec in enumerate(specs):
        name = f"{prefix}{i:05d}.png"
        render(spec).save(out / name, format="PNG")
        captions[name] = caption(spec)
    (out / "captions.json").write_text(json.dumps(captions, indent=1) + "\n", encoding="utf-8")
    return captions


def spec_to_dict(spec: ToySpec) -> dict:
    """A JSON-ready dict of a spec (for manifests and debugging)."""
    return asdict(spec)


# -----------------------------------------------------------------------------
# Out-of-distribution images: what the toy model never saw, for calibrating and testing CLIP gating.
# Each kind is one way a web image can fall outside what a captioner knows: noise, an unknown object or colour on a
# familiar background, text, and photo-like scenes.

OOD_KINDS: tuple[str, ...] = ("noise", "unseen-shape", "unseen-colour", "text", "stripes", "gradient")
OOD_SHAPES: tuple[str, ...] = ("heart", "crescent", "arrow", "ring")
# Far from every COLOURS entry (at least 90 apart in RGB), so no honest model calls them red, orange or green.
OOD_COLOURS: dict[str, tuple[int, int, int]] = {"pink": (255, 105, 180), "brown": (125, 75, 35), "teal": (0, 140, 140)}


def _heart(k: int = 48) -> list[tuple[float, float]]:
    t = [2 * math.pi * i / k for i in range(k)]
    return [(16 * math.sin(a) ** 3, -(13 * math.cos(a) - 5 * math.cos(2 * a) - 2 * math.cos(3 * a) - math.cos(4 * a)))
            for a in t]


def _normalised(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    scale = max(math.hypot(x, y) for x, y in pts)
    return [(x / scale, y / scale) for x, y in pts]


_OOD_POLYGONS = {
    "heart": _normalised(_heart()),
    "arrow": _normalised([(-1, -0.2), (0.2, -0.2), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.2), (-1, 0.2)]),
}


@dataclass(frozen=True)
class OodSpec:
    """One out-of-distribution image. Shape and colour are "" for kinds without them; `seed` drives the pixels of
    noise, text, stripes and gradients. Geometry fields are those of ToySpec (0 where unused)."""

    kind: str  # one of OOD_KINDS
    detail: str  # what is drawn, in words
    width: int
    height: int
    seed: int
    shape: str = ""
    colour: str = ""
    background: str = ""
    cx: float = 0.0
    cy: float = 0.0
    size: float = 0.0
    rotation: float = 0.0


def sample_ood_specs(n: int, seed: int, split: str = "ood") -> list[OodSpec]:
    """`n` OOD specs, deterministic in (seed, split), the kinds dealt in shuffled rounds (each n/len(OOD_KINDS) +-1)."""
    assert n >= 0, f"n must be >= 0, got {n}"
    rng = random.Random(_split_seed(seed, split))
    specs: list[OodSpec] = []
    round_: list[str] = []
    for _ in range(n):
        if not round_:
            round_ = list(OOD_KINDS)
            rng.shuffle(round_)
        kind = round_.pop()
        width, height = _sample_size(rng)
        pixel_seed = rng.getrandbits(32)
        if kind in ("unseen-shape", "unseen-colour"):
            if kind == "unseen-shape":
                shape, colour = rng.choice(OOD_SHAPES), rng.choice(list(COLOURS))
            else:
                shape, colour = rng.choice(SHAPES), rng.choice(list(OOD_COLOURS))
            background = rng.choice([b for b in BACKGROUNDS if b != colour])
            geo = _place(rng, width, height, shape)
            specs.append(OodSpec(kind, f"{colour} {shape} on {background}", width, height, pixel_seed, shape, colour,
                                 background, *geo))
        else:
            variant = {"noise": ("uniform", "gaussian", "grey"), "text": ("dark on light", "light on dark"),
                       "stripes": ("horizontal", "vertical", "diagonal"), "gradient": ("scene",)}[kind]
            specs.append(OodSpec(kind, f"{rng.choice(variant)} {kind}", width, height, pixel_seed))
    return specs


def render_ood(spec: OodSpec) -> Image.Image:
    """Draw an OOD spec as an RGB image of exactly (spec.width, spec.height); same spec, same pixels."""
    if spec.kind in ("unseen-shape", "unseen-colour"):
        fill = {**COLOURS, **OOD_COLOURS}[spec.colour]
        return _render_shape(spec.shape, fill, BACKGROUNDS[spec.background], spec)
    # numpy's Generator (PCG64) gives the same stream for a seed on every platform
    g = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    if spec.kind == "noise":
        if spec.detail.startswith("uniform"):
            px = g.integers(0, 256, (h, w, 3))
        elif spec.detail.startswith("gaussian"):
            px = g.normal(g.uniform(60, 200, 3), g.uniform(30, 70), (h, w, 3))
        else:
            px = np.repeat(g.normal(g.uniform(60, 200), 50, (h, w, 1)), 3, axis=2)
    elif spec.kind == "text":
        return _render_text(spec, g)
    elif spec.kind == "stripes":
        period, phase = g.uniform(4, 16), g.uniform(0, 2 * math.pi)
        angle = {"horizontal": math.pi / 2, "vertical": 0.0}.get(spec.detail.split()[0], g.uniform(0.3, 1.2))
        yy, xx = np.mgrid[0:h, 0:w]
        on = np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period + phase) > 0
        a, b = g.integers(0, 256, 3), g.integers(0, 256, 3)
        px = np.where(on[..., None], a, b)
    else:  # a photo-like scene: a sky-to-ground gradient with soft blobs and sensor noise
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        angle = g.uniform(0, 2 * math.pi)
        t = (xx * math.cos(angle) + yy * math.sin(angle))[..., None]
        t = (t - t.min()) / max(1e-9, float(t.max() - t.min()))
        px = (1 - t) * g.uniform(0, 255, 3) + t * g.uniform(0, 255, 3)
        for _ in range(int(g.integers(3, 7))):
            bx, by, r = g.uniform(0, w / max(h, w)), g.uniform(0, h / max(h, w)), g.uniform(0.08, 0.3)
            weight = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * r * r))[..., None]
            px = (1 - weight) * px + weight * g.uniform(0, 255, 3)
        px = px + g.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(np.rint(px), 0, 255).astype(np.uint8), "RGB")


def _render_text(spec: OodSpec, g) -> Image.Image:
    """Rows of glyph-like marks (strokes in a cell), in words, like a screenshot of text at low resolution."""
    dark, light = tuple(int(v) for v in g.integers(0, 60, 3)), tuple(int(v) for v in g.integers(200, 256, 3))
    ink, paper = (dark, light) if spec.detail.startswith("dark") else (light, dark)
    img = Image.new("RGB", (spec.width, spec.height), paper)
    draw = ImageDraw.Draw(img)
    cell = int(g.integers(5, 9))  # glyph height in pixels
    y = int(g.integers(2, 6))
    while y + cell < spec.height - 2:
        x = int(g.integers(2, 6))
        while x + cell < spec.width - 2:
            for _ in range(int(g.integers(2, 8))):  # one word
                gw = max(2, cell * 2 // 3)
                for _ in range(int(g.integers(1, 4))):  # strokes of one glyph
                    if g.random() < 0.5:
                        sx = x + int(g.integers(0, gw))
                        draw.line((sx, y, sx, y + cell - 1), fill=ink)
                    else:
                        sy = y + int(g.integers(0, cell))
                        draw.line((x, sy, x + gw - 1, sy), fill=ink)
                x += gw + 1
                if x + cell >= spec.width - 2:
                    break
            x += cell  # the space between words
        y += cell + int(g.integers(3, 6))
    return img


def write_ood_split(out_dir: str | Path, n: int, seed: int) -> dict[str, dict]:
    """Render `n` OOD images as `{index:05d}.png` in out_dir, plus `kinds.json` {file name: {"kind", "detail"}}.

    Returns that mapping. An existing kinds.json in out_dir is replaced (not merged).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, dict] = {}
    for i, spec in enumerate(sample_ood_specs(n, seed)):
        name = f"{i:05d}.png"
        render_ood(spec).save(out / name, format="PNG")
        kinds[name] = {"kind": spec.kind, "detail": spec.detail}
    (out / "kinds.json").write_text(json.dumps(kinds, indent=1) + "\n", encoding="utf-8")
    return kinds


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Render a toy-world split: PNGs + captions.json.")
    parser.add_argument("out", type=Path)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="heldout")
    args = parser.parse_args()
    t0 = time.perf_counter()
    write_split(args.out, sample_specs(args.n, args.seed, args.split))
    print(f"{args.n} images -> {args.out} in {time.perf_counter() - t0:.1f} s")
