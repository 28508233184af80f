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
    k = SUPERSAMPLE
    img = Image.new("RGB", (spec.width * k, spec.height * k), BACKGROUNDS[spec.background])
    draw = ImageDraw.Draw(img)
    fill = COLOURS[spec.colour]
    cx, cy, r = spec.cx * k, spec.cy * k, spec.size / 2 * k
    if spec.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        cos_t, sin_t = math.cos(math.radians(spec.rotation)), math.sin(math.radians(spec.rotation))
        # Counter-clockwise on screen, where y points down.
        pts = [
            (cx + r * (x * cos_t + y * sin_t), cy + r * (-x * sin_t + y * cos_t))
            for x, y in _UNIT_POLYGONS[spec.shape]
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
        x0, y0, side = central_square(width, height)
        size = side * rng.uniform(*SHAPE_FRACTION)
        # The farthest the centre may move from the square's centre, keeping the enclosing circle + margin inside.
        slack = max(0.0, side / 2 - size / 2 - side * MARGIN_FRACTION)
        cx = x0 + side / 2 + rng.uniform(-slack, slack)
        cy = y0 + side / 2 + rng.uniform(-slack, slack)
        rotation = 0.0 if shape == "circle" else rng.uniform(-MAX_ROTATION, MAX_ROTATION)
        specs.append(ToySpec(
            shape, colour, background, width, height,
            round(cx, 3), round(cy, 3), round(size, 3), round(rotation, 3),  # rounded: readable, exact in JSON
        ))
    return specs


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
