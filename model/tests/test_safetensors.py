"""model/safetensors_io.py: round trips, a byte-exact file written by hand from the spec, and malformed files."""
import json
import struct

import pytest
import torch

from model.safetensors_io import SafetensorsError, load_file, load_metadata, read_header, save_file


def _hand_written(path, header: dict, data: bytes):
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)


def test_round_trip_every_dtype(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 4, generator=g),
        "f16": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "f64": torch.randn(2, generator=g).double(),
        "i64": torch.arange(-3, 3),
        "i32": torch.arange(4, dtype=torch.int32),
        "i8": torch.tensor([-1, 2], dtype=torch.int8),
        "u8": torch.tensor([255, 0], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 7),
        "h.0.attn.c_attn.weight": torch.randn(8, 24, generator=g),  # Conv1D [in, out]: no transposition on the way
    }
    p = tmp_path / "x.safetensors"
    save_file(tensors, str(p), metadata={"format": "pt"})
    back = load_file(str(p))
    assert set(back) == set(tensors)
    for k, t in tensors.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape, k
        assert torch.equal(back[k], t), k
    assert load_metadata(str(p)) == {"format": "pt"}
    (n,) = struct.unpack("<Q", p.read_bytes()[:8])
    assert (8 + n) % 8 == 0, "the data buffer should start 8-byte aligned"


def test_reads_a_file_written_by_hand_from_the_spec(tmp_path):
    # Two tensors, F32 [2] = [1, -2] then F16 [1] = [0.5], laid out exactly as the format describes.
    data = struct.pack("<2f", 1.0, -2.0) + struct.pack("<e", 0.5)
    header = {"b": {"dtype": "F16", "shape": [1], "data_offsets": [8, 10]},
              "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "__metadata__": {"format": "pt"}}
    p = tmp_path / "hand.safetensors"
    _hand_written(p, header, data)
    t = load_file(str(p))
    assert t["a"].tolist() == [1.0, -2.0] and t["a"].dtype == torch.float32
    assert t["b"].tolist() == [0.5] and t["b"].dtype == torch.float16


def test_writer_output_is_plain_spec_bytes(tmp_path):
    p = tmp_path / "w.safetensors"
    save_file({"x": torch.tensor([3.0, 4.0])}, str(p))
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header == {"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    assert raw[8 + n:] == struct.pack("<2f", 3.0, 4.0)


@pytest.mark.parametrize("case,match", [
    ("truncated", "outside the"),
    ("overlap", "overlap"),
    ("bad_dtype", "unsupported dtype"),
    ("wrong_size", "bytes, but its data_offsets span"),
    ("not_json", "not valid UTF-8 JSON"),
    ("huge_header", "impossible"),
    ("too_short", "too short"),
])
def test_malformed_files_are_refused_with_a_named_error(tmp_path, case, match):
    p = tmp_path / f"{case}.safetensors"
    f32 = struct.pack("<4f", 1, 2, 3, 4)
    if case == "truncated":
        _hand_written(p, {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, f32[:10])
    elif case == "overlap":
        _hand_written(p, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, f32)
    elif case == "bad_dtype":
        _hand_written(p, {"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, f32[:4])
    elif case == "wrong_size":
        _hand_written(p, {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, f32)
    elif case == "not_json":
        p.write_bytes(struct.pack("<Q", 4) + b"\xff{{{" + f32)
    elif case == "huge_header":
        p.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    elif case == "too_short":
        p.write_bytes(b"abc")
    with pytest.raises(SafetensorsError, match=match) as e:
        load_file(str(p))
    assert str(p) in str(e.value), "the error should name the file"


def test_header_only_read_does_not_touch_data(tmp_path):
    p = tmp_path / "h.safetensors"
    save_file({"w": torch.zeros(10, 3)}, str(p))
    header, meta, start = read_header(str(p))
    assert header["w"]["shape"] == [10, 3] and meta == {} and start % 8 == 0
