"""The PIL reference preprocessing: geometry rules and named errors."""

import io

import numpy as np
import pytest
from PIL import Image

from model.preprocess import ImageDecodeError, load_image, preprocess, resized_size

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


def test_alpha_is_dropped_not_composited():
    img = Image.new("RGBA", (40, 40), (200, 100, 50, 0))
    x = preprocess(img, 16, MEAN, STD)
    assert np.allclose(x[0], (200 / 255 - 0.5) / 0.25, atol=1e-6)


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
