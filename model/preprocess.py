"""CLIP's image preprocessing, the PIL reference every engine must match (docs/pack-format.md):

  1. convert to RGB; a picture with transparency (RGBA, LA, or a palette with a transparent colour) is first laid over
     white, as a page shows it, by the integer rule of to_rgb (the extension's preprocess.ts uses the same). Upstream
     CLIP drops alpha instead, keeping whatever colour transparent pixels store, which nobody sees (and which browsers
     do not even keep: their canvas turns fully transparent pixels black);
  2. resize so the SHORTER side is `size`, bicubic with antialiasing (PIL widens the filter when it shrinks);
     the longer side becomes floor(size * long / short), as torchvision's Resize computes it;
  3. centre-crop size x size, the offset being round((side - size) / 2) with Python's round (half to even);
  4. scale to [0, 1] and normalise with the pack's mean and std, channels first.
"""

from typing import Sequence, Tuple

import numpy as np
from PIL import Image


class ImageDecodeError(ValueError):
    """The bytes are not an image PIL can decode, or the image has no pixels."""


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB as a reader sees the picture: transparency laid over white, each channel
    (c * a + 255 * (255 - a) + 127) // 255 in integers (exact, so the TypeScript engine matches byte for byte)."""
    if not has_alpha(img):
        return img.convert("RGB")
    rgba = np.asarray(img.convert("RGBA"), dtype=np.uint32)
    a = rgba[..., 3:4]
    rgb = (rgba[..., :3] * a + 255 * (255 - a) + 127) // 255
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def resized_size(width: int, height: int, size: int) -> Tuple[int, int]:
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def preprocess(img: Image.Image, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """PIL image -> float32 (3, size, size)."""
    if img.width == 0 or img.height == 0:
        raise ImageDecodeError(f"image is {img.width}x{img.height}: nothing to caption")
    img = to_rgb(img)
    w, h = resized_size(img.width, img.height, size)
    img = img.resize((w, h), Image.BICUBIC)
    left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32) / 255.0  # (size, size, 3)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))  # (3, size, size)


def load_image(path: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{path} is not a decodable image ({e})") from e
