"""Fixtures for test/converter/readers: the synthetic published files (model/published.py), odd tensors, hostile and
damaged archives, and reference.json: what torch itself reads from each file (name -> dtype, shape, and the SHA-256
of the tensor as contiguous little-endian float32, i.e. `t.float().contiguous()`).

    /usr/bin/python3 test/converter/readers/fixtures.py OUT_DIR
    /usr/bin/python3 test/converter/readers/fixtures.py --reference PUBLISHED_DIR   (for full-size.test.ts)
"""
import hashlib
import io
import json
import os
import pickle
import sys
import zipfile
from collections import OrderedDict

sys.path.insert(0, os.getcwd())

import torch  # noqa: E402

from model import published  # noqa: E402
from model.safetensors_io import load_file, save_file  # noqa: E402


def digest(t: torch.Tensor) -> dict:
    f = t.detach().float().contiguous()
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "sha256": hashlib.sha256(f.numpy().astype("<f4").tobytes()).hexdigest()}


def odd_state() -> OrderedDict:
    g = torch.Generator().manual_seed(3)
    base = torch.randn(10, 6, generator=g)
    tied = torch.randn(4, 3, generator=g)
    special16 = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, 1e-5, float("inf"), float("-inf"), float("nan")])
    return OrderedDict([
        ("transposed", torch.randn(5, 7, generator=g).t()),  # strides (1, 7): not contiguous
        ("sliced", base[3:]),  # a storage offset of 18 elements
        ("narrow", base[:, 1:4]),  # offset and strides together
        ("expanded_rows", torch.randn(3, 1, 4, generator=g)),  # a size-1 dimension
        ("half", special16.half()),
        ("half_random", torch.randn(33, generator=g).half()),
        ("bf16", torch.cat([special16, torch.randn(20, generator=g)]).bfloat16()),
        ("f64", torch.randn(2, 9, generator=g, dtype=torch.float64)),  # rounds on the way to float32
        ("i64", torch.tensor([-(2 ** 40), -1, 0, 7, 2 ** 24 + 1])),
        ("i32", torch.arange(-3, 5, dtype=torch.int32)),
        ("u8", torch.tensor([0, 1, 255], dtype=torch.uint8)),
        ("i8", torch.tensor([-128, 0, 127], dtype=torch.int8)),
        ("bool", torch.tensor([True, False, True])),
        ("scalar", torch.tensor(1.25)),
        ("empty", torch.zeros(0, 3)),
        ("tied_a", tied),
        ("tied_b", tied),  # the same storage under a second name, as gpt.lm_head.weight and wte
    ])


class _Reduce:
    """Pickles as a call of `fn(*args)`: what a hostile checkpoint does to run code when Python loads it."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def write_zip(path: str, entries: dict, compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)


def zip_entries(path: str) -> dict:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def storage_bytes(path: str) -> int:
    with zipfile.ZipFile(path) as z:
        return sum(i.file_size for i in z.infolist() if "/data/" in i.filename)


def published_reference(pub: str) -> dict:
    """What torch reads from model/published.py's three files, each loaded as its publisher's code loads it."""
    ref = {}
    ts = torch.jit.load(os.path.join(pub, "clip.pt"), map_location="cpu").state_dict()
    ref["clip.pt"] = {k: digest(v) for k, v in ts.items()}
    ref["clip.safetensors"] = {k: digest(v) for k, v in load_file(os.path.join(pub, "clip.safetensors")).items()}
    cc = torch.load(os.path.join(pub, "clipcap.pt"), map_location="cpu")
    ref["clipcap.pt"] = {k: digest(v) for k, v in cc.items()}
    return ref


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    published.main(["--random", "small", "--out", os.path.join(out, "published"), "--seed", "1"])
    ref = {f"published/{k}": v for k, v in published_reference(os.path.join(out, "published")).items()}

    odd = odd_state()
    config = {"name": "odd", "lr": 1.5e-4, "big": 2 ** 40, "neg": -3, "layers": [1, 2, 3], "none": None, "ok": True}
    torch.save({"config": config, "state_dict": odd}, os.path.join(out, "odd.pt"))
    got = torch.load(os.path.join(out, "odd.pt"), map_location="cpu")["state_dict"]
    assert not got["transposed"].is_contiguous() and got["sliced"].storage_offset() == 18, "torch.save kept the views"
    ref["odd.pt"] = {k: digest(v) for k, v in got.items()}
    save_file({k: v.contiguous() for k, v in odd.items() if k != "tied_b"}, os.path.join(out, "odd.safetensors"))
    ref["odd.safetensors"] = {k: digest(v) for k, v in load_file(os.path.join(out, "odd.safetensors")).items()}

    # The same entries, re-zipped: deflated (refused), and with ZIP64 records (zipfile writes them past ZIP64_LIMIT).
    entries = zip_entries(os.path.join(out, "odd.pt"))
    write_zip(os.path.join(out, "deflated.pt"), entries, zipfile.ZIP_DEFLATED)
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 64  # every offset and size past 64 bytes goes into ZIP64 fields
    try:
        write_zip(os.path.join(out, "zip64.pt"), entries)
    finally:
        zipfile.ZIP64_LIMIT = limit
    assert zip_entries(os.path.join(out, "zip64.pt")) == entries  # (torch's own reader refuses this zip, zipfile reads it)

    # Storages saved from a GPU (OpenAI's archives say 'cuda:0'): the same bytes, another location string.
    gpu = dict(entries)
    gpu["odd/data.pkl"] = gpu["odd/data.pkl"].replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    assert gpu["odd/data.pkl"] != entries["odd/data.pkl"]
    write_zip(os.path.join(out, "cuda.pt"), gpu)
    assert torch.equal(torch.load(os.path.join(out, "cuda.pt"), map_location="cpu")["state_dict"]["narrow"], odd["narrow"])

    # Hostile pickles: each would run a command under Python's pickle.load; the marker file proves nothing ran.
    marker = os.path.join(out, "PWNED")
    hostile = {
        "evil-system.pt": pickle.dumps(_Reduce(os.system, (f"touch {marker}",)), protocol=2),
        "evil-eval.pt": pickle.dumps(_Reduce(eval, (f"open({marker!r}, 'w')",)), protocol=2, fix_imports=False),
        "evil-eval-py2.pt": pickle.dumps(_Reduce(eval, (f"open({marker!r}, 'w')",)), protocol=2),  # __builtin__.eval
        # protocol 4 names globals with STACK_GLOBAL; the call hides inside an otherwise ordinary state dict
        "evil-nested.pt": pickle.dumps(OrderedDict([("ok", 1), ("x", {"y": _Reduce(__import__("subprocess").Popen,
                                                                              (["touch", marker],))})]), protocol=4),
    }
    for name, pkl in hostile.items():
        write_zip(os.path.join(out, name), {"archive/data.pkl": pkl, "archive/version": b"3\n"})

    # Damaged pickles: an opcode no pickle has, and a stream cut before STOP.
    write_zip(os.path.join(out, "bad-opcode.pt"), {"archive/data.pkl": b"\x80\x02}q\x00\xff.", "archive/version": b"3\n"})
    write_zip(os.path.join(out, "short-pickle.pt"), {"archive/data.pkl": b"\x80\x02}q\x00(X\x05\x00\x00\x00ab",
                                                     "archive/version": b"3\n"})
    # Dicts nested 500 deep: harmless data, but a recursive walk over it would exhaust the JS stack.
    # (written by hand: Python's own pickler recurses too deep for it; EMPTY_DICT, key "d", ..., then SETITEMs)
    deep = b"\x80\x02" + b"}X\x01\x00\x00\x00d" * 500 + b"}" + b"s" * 500 + b"."
    assert len(str(pickle.loads(deep))) > 2000
    write_zip(os.path.join(out, "deep.pt"), {"archive/data.pkl": deep, "archive/version": b"3\n"})
    # Protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL), as torch.save(..., pickle_protocol=4) writes.
    torch.save(odd, os.path.join(out, "proto4.pt"), pickle_protocol=4)
    assert b"\x95" in zip_entries(os.path.join(out, "proto4.pt"))["proto4/data.pkl"][:3], "protocol 4 starts with FRAME"

    torch.save(odd, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
    ref["_storage_bytes"] = {f: storage_bytes(os.path.join(out, f)) for f in ("published/clip.pt", "published/clipcap.pt")}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "--reference":  # fixtures.py --reference DIR: reference.json for an existing published/ folder
        with open(os.path.join(sys.argv[2], "reference.json"), "w") as f:
            json.dump(published_reference(sys.argv[2]), f, indent=1)
    else:
        main(sys.argv[1])
