"""A small reader and writer for the safetensors format, with no dependency beyond torch and numpy.

The format (https://huggingface.co/docs/safetensors, "Format" section):

    [8 bytes]  N, the header length, unsigned little-endian 64-bit
    [N bytes]  a UTF-8 JSON object:
                 {"<name>": {"dtype": "F32", "shape": [768, 2304], "data_offsets": [begin, end]}, ...,
                  "__metadata__": {"<str>": "<str>"}}          (the metadata entry is optional)
    [rest]     the byte buffer; data_offsets are relative to its start, little-endian, C order

Every tensor must lie inside the buffer, its byte count must match dtype x shape, and tensors may not overlap.
A file that breaks any of these rules is refused with a SafetensorsError naming the tensor and the rule.

    tensors = load_file("model.safetensors")            # dict name -> torch.Tensor (CPU, the file's dtype)
    save_file(tensors, "out.safetensors", metadata={"format": "pt"})
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from typing import Dict, Optional, Tuple

import numpy as np
import torch

# safetensors dtype code -> (numpy dtype used to read the bytes, torch dtype of the result)
_DTYPES: Dict[str, Tuple[np.dtype, torch.dtype]] = {
    "F64": (np.dtype("<f8"), torch.float64),
    "F32": (np.dtype("<f4"), torch.float32),
    "F16": (np.dtype("<f2"), torch.float16),
    "BF16": (np.dtype("<i2"), torch.bfloat16),  # numpy has no bfloat16: read the raw 16 bits, reinterpret in torch
    "I64": (np.dtype("<i8"), torch.int64),
    "I32": (np.dtype("<i4"), torch.int32),
    "I16": (np.dtype("<i2"), torch.int16),
    "I8": (np.dtype("i1"), torch.int8),
    "U8": (np.dtype("u1"), torch.uint8),
    "BOOL": (np.dtype("?"), torch.bool),
}
_TORCH_TO_CODE = {torch_dtype: code for code, (_, torch_dtype) in _DTYPES.items()}

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the reference implementation refuses headers over 100 MB too


class SafetensorsError(ValueError):
    """A safetensors file is malformed; the message names the file, the tensor and what is wrong."""


def read_header(path: str) -> Tuple[Dict[str, dict], Dict[str, str], int]:
    """Return (tensor entries, metadata, byte offset of the data buffer), validating the header only."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"{path}: file is {size} bytes, too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} is impossible for a file of {size} bytes "
                                   "(not a safetensors file, or truncated)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not valid UTF-8 JSON ({e})") from e
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    data_start = 8 + n
    data_len = size - data_start
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{path}: tensor {name!r} needs exactly dtype, shape and data_offsets, got {entry!r}")
        if entry["dtype"] not in _DTYPES:
            raise SafetensorsError(f"{path}: tensor {name!r} has unsupported dtype {entry['dtype']!r} "
                                   f"(supported: {', '.join(_DTYPES)})")
        shape, offsets = entry["shape"], entry["data_offsets"]
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise SafetensorsError(f"{path}: tensor {name!r} has a bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise SafetensorsError(f"{path}: tensor {name!r} has data_offsets {offsets!r} outside the "
                                   f"{data_len}-byte data buffer (file truncated?)")
        want = int(np.prod(shape, dtype=np.int64)) * _DTYPES[entry["dtype"]][0].itemsize
        if offsets[1] - offsets[0] != want:
            raise SafetensorsError(f"{path}: tensor {name!r} is {entry['dtype']} {shape} = {want} bytes, "
                                   f"but its data_offsets span {offsets[1] - offsets[0]} bytes")
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise SafetensorsError(f"{path}: tensors {n0!r} and {n1!r} overlap in the data buffer")
    return header, metadata, data_start


def load_file(path: str) -> Dict[str, torch.Tensor]:
    """Read every tensor of a safetensors file into CPU torch tensors (copies, so the file can be closed)."""
    header, _, data_start = read_header(path)
    out: Dict[str, torch.Tensor] = {}
    if not header:
        return out
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for name, entry in header.items():
            np_dtype, torch_dtype = _DTYPES[entry["dtype"]]
            begin, end = entry["data_offsets"]
            count = (end - begin) // np_dtype.itemsize
            arr = np.frombuffer(mm, dtype=np_dtype, count=count, offset=data_start + begin).copy()
            t = torch.from_numpy(arr.reshape(entry["shape"]))
            if entry["dtype"] == "BF16":
                t = t.view(torch.bfloat16)  # same 16 bits, reinterpreted
            out[name] = t
    return out


def load_metadata(path: str) -> Dict[str, str]:
    """The file's __metadata__ (empty if absent)."""
    return read_header(path)[1]


def save_file(tensors: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Write tensors as safetensors. Tensors are laid out widest dtype first, so every tensor is aligned."""
    for name, t in tensors.items():
        assert isinstance(name, str) and name != "__metadata__", f"bad tensor name {name!r}"
        assert isinstance(t, torch.Tensor), f"{name!r} is a {type(t).__name__}, not a torch.Tensor"
        assert t.dtype in _TORCH_TO_CODE, f"{name!r} has dtype {t.dtype}, which safetensors cannot store here"
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header: Dict[str, object] = {}
    if metadata:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()), "metadata must be str -> str"
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in order:
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _TORCH_TO_CODE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-(8 + len(head)) % 8)  # pad with spaces so the data buffer starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)
