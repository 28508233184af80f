"""The PIL reference preprocessing: geometry rules and named errors."""

import io

import numpy as np
import pytest
from PIL import Image

from model.preprocess import ImageDecodeError, load_image, preprocess, resized_size, to_rgb

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def test_shorter_side_becomes_size_and_longer_is_truncated():
    assert resized_size(300, 200, 224) == (336, 224)
    assert resized_size(199, 301, 224) == (224, 338)  # 224 * 301 / 199 = 338.8 -> 338
    assert resized_size(50, 50, 64) == (64, 64)


def test_centre_crop_and_normalisation():
    img = Image.new("RGB", (128, 64), (255, 0, 128))
    img.paste((0, 0, 0), (0, 0, 12, 64))  # a black band at the left edge, far from the crop, is cropped away
    x = preprocess(img, 32, MEAN, STD)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    assert np.allclose(x[0], (1.0 - 0.5) / 0.25) and np.allclose(x[1], (0.0 - 0.5) / 0.25)


def test_transparency_is_laid_over_white():
    # Fully transparent: white, whatever colour the pixels store.
    x = preprocess(Image.new("RGBA", (40, 40), (200, 100, 50, 0)), 16, MEAN, STD)
    assert np.allclose(x, (1.0 - 0.5) / 0.25, atol=1e-6)
    # Opaque: unchanged.
    x = preprocess(Image.new("RGBA", (40, 40), (200, 100, 50, 255)), 16, MEAN, STD)
    assert np.allclose(x[0], (200 / 255 - 0.5) / 0.25, atol=1e-6)
    # Half transparent: halfway to white, by the integer rule.
    assert to_rgb(Image.new("RGBA", (2, 2), (0, 100, 255, 128))).getpixel((0, 0)) == (127, 177, 255)
    # Grey with alpha, and a palette with a transparent index, the same way.
    assert to_rgb(Image.new("LA", (2, 2), (10, 0))).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    assert [to_rgb(pal).getpixel((i, 0)) for i in range(2)] == [(255, 255, 255), (255, 0, 0)]
    # No transparency: PIL's own conversion, as before.
    assert to_rgb(Image.new("CMYK", (1, 1), (0, 0, 0, 0))).getpixel((0, 0)) == Image.new("CMYK", (1, 1), (0, 0, 0, 0)).convert("RGB").getpixel((0, 0))


def test_bad_images_are_named(tmp_path):
    with pytest.raises(ImageDecodeError, match="0x5"):
        preprocess(Image.new("RGB", (0, 5)), 16, MEAN, STD)
    p = tmp_path / "x.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ImageDecodeError, match="not a decodable image"):
        load_image(str(p))
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "PNG")
    p.write_bytes(buf.getvalue()[:60])  # truncated
    with pytest.raises(ImageDecodeError):
        load_image(str(p))
