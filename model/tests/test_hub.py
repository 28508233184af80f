"""model/hub.py and `build_pack --from-hub` against a loopback HTTP server standing in for the mirrors
(CAPTION_MIRROR_BASE rewrites https://HOST/PATH to http://127.0.0.1:PORT/HOST/PATH, as the extension's test builds
do): mirror fallback on 404, on 5xx after retries and on a wrong hash; resuming a cut transfer with Range; a hash
mismatch refused and its partial file deleted; the pack built from the catalogue's entry."""
import hashlib
import json
import os
import re
import socket
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from model import build_pack, hub

sys.path.insert(0, os.path.dirname(__file__))
import official_specs as S  # noqa: E402

HF = "https://huggingface.co"
OPENAI = "https://openaipublic.azureedge.net"


class Mirror:
    """Serves `files` (path -> bytes) with Range support. Per path, `faults` (a list consumed one request at a
    time) can answer a status code, or ("cut", n): send the headers of the whole answer, then n bytes, then close.
    `redirects` (path -> (location, extra headers)) answer 302, as the Hub does for its LFS files."""

    def __init__(self):
        self.files, self.faults, self.requests, self.redirects = {}, {}, [], {}
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def do_GET(self):
                mirror.requests.append((self.path, self.headers.get("Range")))
                if self.path in mirror.redirects:
                    location, extra = mirror.redirects[self.path]
                    self.send_response(302)
                    for k, v in {"Location": location, "Content-Length": "0", **extra}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    return
                fault = mirror.faults.get(self.path, []).pop(0) if mirror.faults.get(self.path) else None
                if isinstance(fault, int):
                    self.send_error(fault)
                    return
                data = mirror.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                m = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if m:
                    start, status = int(m.group(1)), 206
                    if start >= len(data):
                        self.send_error(416)
                        return
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if isinstance(fault, tuple) and fault[0] == "cut":
                    self.wfile.write(body[:fault[1]])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def path_of(self, url):
        return hub.mirror_url(url, self.base)[len(self.base):]

    def serve(self, url, data):
        self.files[self.path_of(url)] = data

    def fault(self, url, *faults):
        self.faults[self.path_of(url)] = list(faults)

    def hits(self, url):
        return [r for p, r in self.requests if p == self.path_of(url)]


@pytest.fixture
def mirror(monkeypatch):
    m = Mirror()
    monkeypatch.setenv("CAPTION_MIRROR_BASE", m.base)
    monkeypatch.setattr(hub, "BACKOFF_S", 0.0)
    yield m
    m.server.shutdown()
    m.server.server_close()


def source(url, data, fmt="torch-zip"):
    return {"url": url, "format": fmt, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


PAYLOAD = os.urandom(300_000)


def test_mirror_url_rewrites_host_and_path(monkeypatch):
    monkeypatch.delenv("CAPTION_MIRROR_BASE", raising=False)
    url = f"{HF}/akhaliq/CLIP-prefix-captioning-COCO-weights/resolve/abc/coco_weights.pt?download=1"
    assert hub.mirror_url(url) == url
    monkeypatch.setenv("CAPTION_MIRROR_BASE", "http://127.0.0.1:9/m/")
    assert hub.mirror_url(url) == ("http://127.0.0.1:9/m/huggingface.co/akhaliq/CLIP-prefix-captioning-COCO-weights"
                                   "/resolve/abc/coco_weights.pt?download=1")


@pytest.mark.parametrize("first", ["404", "500", "wrong-hash", "wrong-size", "unreachable"])
def test_falls_back_to_the_next_mirror(mirror, tmp_path, monkeypatch, first):
    primary, backup = f"{OPENAI}/clip/models/x/ViT-B-32.pt", f"{HF}/mirror/resolve/c/ViT-B-32.pt"
    spec = {"fetch": "whole", "sources": [source(primary, PAYLOAD), source(backup, PAYLOAD)]}
    mirror.serve(backup, PAYLOAD)
    if first == "500":
        mirror.serve(primary, PAYLOAD)
        mirror.fault(primary, 500, 503, 500)  # all of the attempts
    elif first == "wrong-hash":
        mirror.serve(primary, PAYLOAD[:-1] + bytes([PAYLOAD[-1] ^ 1]))
    elif first == "wrong-size":
        mirror.serve(primary, PAYLOAD + b"x")
    elif first == "unreachable":  # connection refused: a port nothing listens on
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}/ViT-B-32.pt"
        real = hub.mirror_url
        monkeypatch.setattr(hub, "mirror_url", lambda url, base=None: dead if url == primary else real(url, base))
    got = hub.fetch_input("clip", spec, str(tmp_path))
    with open(got["path"], "rb") as f:
        assert f.read() == PAYLOAD
    assert got["url"] == backup
    if first == "500":
        assert len(mirror.hits(primary)) == hub.ATTEMPTS
    name = os.path.basename(got["path"])
    assert sorted(os.listdir(tmp_path)) == [name, name + ".json"]  # no partial file left


def test_a_5xx_that_recovers_is_retried_on_the_same_mirror(mirror, tmp_path):
    url = f"{HF}/a/resolve/c/coco_weights.pt"
    mirror.serve(url, PAYLOAD)
    mirror.fault(url, 502)
    got = hub.fetch_input("clipcap", {"fetch": "whole", "sources": [source(url, PAYLOAD)]}, str(tmp_path))
    assert got["url"] == url and len(mirror.hits(url)) == 2


def test_a_cut_transfer_resumes_with_range(mirror, tmp_path):
    url = f"{HF}/a/resolve/c/coco_weights.pt"
    mirror.serve(url, PAYLOAD)
    mirror.fault(url, ("cut", 100_000))
    got = hub.fetch_input("clipcap", {"fetch": "whole", "sources": [source(url, PAYLOAD)]}, str(tmp_path))
    with open(got["path"], "rb") as f:
        assert f.read() == PAYLOAD
    ranges = mirror.hits(url)
    assert ranges[0] is None and len(ranges) == 2
    resumed_from = int(re.match(r"bytes=(\d+)-$", ranges[1]).group(1))
    assert 0 < resumed_from <= 100_000  # only the missing tail is fetched again


def test_a_partial_file_from_an_earlier_run_is_resumed(mirror, tmp_path):
    url = f"{HF}/a/resolve/c/coco_weights.pt"
    src = source(url, PAYLOAD)
    mirror.serve(url, PAYLOAD)
    with open(hub.cache_path(src, str(tmp_path)) + ".part", "wb") as f:
        f.write(PAYLOAD[:123_456])
    got = hub.fetch_input("clipcap", {"fetch": "whole", "sources": [src]}, str(tmp_path))
    assert mirror.hits(url) == ["bytes=123456-"]
    with open(got["path"], "rb") as f:
        assert f.read() == PAYLOAD


def test_hash_mismatch_is_refused_and_deleted(mirror, tmp_path):
    url = f"{OPENAI}/clip/models/x/RN50x4.pt"
    bad = bytes(len(PAYLOAD))
    mirror.serve(url, bad)
    src = source(url, PAYLOAD)
    with pytest.raises(hub.HubError) as e:
        hub.fetch_input("clip", {"fetch": "whole", "sources": [src]}, str(tmp_path))
    msg = str(e.value)
    assert "RN50x4.pt" in msg and src["sha256"] in msg and hashlib.sha256(bad).hexdigest() in msg
    assert os.listdir(tmp_path) == []


def test_a_cached_file_is_not_downloaded_again(mirror, tmp_path):
    url = f"{HF}/a/resolve/c/coco_weights.pt"
    mirror.serve(url, PAYLOAD)
    spec = {"fetch": "whole", "sources": [source(url, PAYLOAD)]}
    first = hub.fetch_input("clipcap", spec, str(tmp_path))
    second = hub.fetch_input("clipcap", spec, str(tmp_path))
    assert first == second and len(mirror.hits(url)) == 1


def _hub_redirect(mirror, url, data, sha256):
    """The Hub's way: /resolve/ answers 302 to a CDN, declaring the LFS object's size and SHA-256 on the 302 only."""
    cdn = f"https://cdn-lfs.huggingface.co/repos/{hashlib.sha256(data).hexdigest()}"
    mirror.serve(cdn, data)
    mirror.redirects[mirror.path_of(url)] = (mirror.base + mirror.path_of(cdn),
                                             {"X-Linked-Size": str(len(data)), "X-Linked-Etag": f'"{sha256}"'})


def test_unpinned_source_is_checked_against_what_the_hub_declares(mirror, tmp_path):
    url = f"{HF}/akhaliq/w/resolve/main/coco_weights.pt"
    _hub_redirect(mirror, url, PAYLOAD, hashlib.sha256(PAYLOAD).hexdigest())
    spec = {"fetch": "whole", "sources": [{"url": url, "format": "torch-zip", "bytes": None, "sha256": None}]}
    got = hub.fetch_input("clipcap", spec, str(tmp_path))
    assert (got["check"], got["bytes"], got["sha256"]) == \
        ("sha256-server", len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())
    assert hub.fetch_input("clipcap", spec, str(tmp_path)) == got and len(mirror.hits(url)) == 1  # cached


def test_unpinned_source_whose_declared_hash_differs_is_refused(mirror, tmp_path):
    url = f"{HF}/akhaliq/w/resolve/main/coco_weights.pt"
    _hub_redirect(mirror, url, PAYLOAD, "ab" * 32)
    spec = {"fetch": "whole", "sources": [{"url": url, "format": "torch-zip", "bytes": None, "sha256": None}]}
    with pytest.raises(hub.HubError, match=r"SHA-256 mismatch for .*coco_weights.pt: expected abab.*\(declared by "
                                           r"the server\), got " + hashlib.sha256(PAYLOAD).hexdigest()):
        hub.fetch_input("clipcap", spec, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_unpinned_source_without_declarations_is_checked_by_size(mirror, tmp_path):
    url = f"{OPENAI}/clip/models/{hashlib.sha256(PAYLOAD).hexdigest()}/RN50x4.pt"
    mirror.serve(url, PAYLOAD)
    spec = {"fetch": "vision-only", "sources": [{"url": url, "format": "torchscript", "bytes": None, "sha256": None}]}
    assert hub.fetch_input("clip", spec, str(tmp_path))["check"] == "size-server"


def test_user_file_is_checked_against_the_pin(tmp_path):
    p = tmp_path / "transformer_weights.pt"
    p.write_bytes(PAYLOAD)
    spec = {"fetch": "user-file", "sources": [], "hint": "Google Drive file id X"}
    with pytest.raises(hub.HubError, match="Google Drive file id X"):
        hub.fetch_input("clipcap", spec, str(tmp_path))
    assert hub.fetch_input("clipcap", spec, str(tmp_path), str(p))["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(hub.HubError, match="SHA-256 mismatch for .*transformer_weights.pt: expected 00"):
        hub.fetch_input("clipcap", {**spec, "sha256": "00" * 32}, str(tmp_path), str(p))


def test_catalogue_comes_from_caption_catalogue(tmp_path, monkeypatch):
    p = tmp_path / "cat.json"
    p.write_text(json.dumps({"format": "clipcap-catalogue", "formatVersion": 1, "models": [{"id": "m"}]}))
    monkeypatch.setenv("CAPTION_CATALOGUE", str(p))
    assert hub.find_model(hub.load_catalogue(), "m") == {"id": "m"}
    with pytest.raises(hub.HubError, match="no model 'clipcap-coco' .*it lists: m"):
        hub.find_model(hub.load_catalogue(), "clipcap-coco")
    monkeypatch.setenv("CAPTION_CATALOGUE", str(tmp_path / "none.json"))
    with pytest.raises(hub.HubError, match="does not exist"):
        hub.load_catalogue()


# -----------------------------------------------------------------------------
# build_pack --from-hub, end to end on tiny synthetic files in the published containers


def _write_files(d):
    """A tiny ViT CLIP archive (TorchScript, OpenAI names, fp16) and a ClipCap MLP checkpoint (torch.save of an
    OrderedDict, as ClipCap's train.py saves), through model/published.py when it exists."""
    clip = S.materialize(S.openai_vit(image=32, patch=16, width=64, layers=1, embed_dim=16, text_width=64,
                                      text_layers=1, vocab=100), random=True)
    clipcap = OrderedDict(S.materialize(S.clipcap_mlp(prefix_length=2, dim_clip=16, n_embd=64, n_layer=1, n_pos=32),
                                        dtype=torch.float32, random=True))
    try:
        from model import published
        published.write_torchscript_clip({k: v for k, v in clip.items() if k.startswith("visual.")},
                                         str(d / "ViT-B-32.pt"), image_size=32, embed_dim=16)
        published.write_torch_zip(clipcap, str(d / "coco_weights.pt"))
    except ImportError:
        S.write_torchscript(clip, str(d / "ViT-B-32.pt"))
        torch.save(clipcap, str(d / "coco_weights.pt"))
    return (d / "ViT-B-32.pt").read_bytes(), (d / "coco_weights.pt").read_bytes()


def test_build_pack_from_hub(mirror, tmp_path, monkeypatch):
    clip, clipcap = _write_files(tmp_path)
    clip_url = f"{OPENAI}/clip/models/abc/ViT-B-32.pt"
    cc_url, cc_backup = f"{HF}/a/coco/resolve/c1/coco_weights.pt", f"{HF}/b/coco/resolve/c2/coco_weights.pt"
    mirror.serve(clip_url, clip)
    mirror.serve(cc_backup, clipcap)  # the first ClipCap mirror answers 404
    catalogue = {"format": "clipcap-catalogue", "formatVersion": 1, "models": [{
        "id": "clipcap-coco", "default": True, "name": "ClipCap COCO", "description": "Everyday scenes.",
        "template": "vit-b32-mlp-fp16", "precision": "fp32", "license": "MIT (test)",
        "inputs": {"clip": {"fetch": "vision-only", "sources": [source(clip_url, clip, "torchscript")]},
                   "clipcap": {"fetch": "whole", "sources": [source(cc_url, clipcap), source(cc_backup, clipcap)]}}}]}
    (tmp_path / "catalogue.json").write_text(json.dumps(catalogue))
    monkeypatch.setenv("CAPTION_CATALOGUE", str(tmp_path / "catalogue.json"))
    out = tmp_path / "packs" / "coco"
    report = build_pack.main(["--preset", "coco", "--from-hub", "--out", str(out), "--downloads",
                              str(tmp_path / "dl"), "--no-check", "--max-tokens", "8"])
    assert report["id"] == "clipcap-coco" and report["precision"] == "fp32"
    with open(out / "pack.json") as f:
        pack = json.load(f)
    assert (pack["id"], pack["name"], pack["description"], pack["precision"]) == \
        ("clipcap-coco", "ClipCap COCO", "Everyday scenes.", "fp32")
    prov = pack["provenance"]
    assert prov["license"] == "MIT (test)" and prov["catalogue"] == "clipcap-coco"
    assert prov["inputs"] == [
        {"role": "clip", "url": clip_url, "format": "torchscript", "bytes": len(clip),
         "sha256": hashlib.sha256(clip).hexdigest(), "check": "sha256-pinned"},
        {"role": "clipcap", "url": cc_backup, "format": "torch-zip", "bytes": len(clipcap),
         "sha256": hashlib.sha256(clipcap).hexdigest(), "check": "sha256-pinned"}]
    cached = [f"{hashlib.sha256(clip).hexdigest()[:16]}-ViT-B-32.pt",
              f"{hashlib.sha256(clipcap).hexdigest()[:16]}-coco_weights.pt"]
    assert sorted(os.listdir(tmp_path / "dl")) == sorted(cached + [c + ".json" for c in cached])


def test_from_hub_coco_transformer_requires_the_user_file(tmp_path, monkeypatch):
    catalogue = {"format": "clipcap-catalogue", "formatVersion": 1, "models": [{
        "id": "clipcap-coco-transformer", "name": "T", "precision": "fp16",
        "inputs": {"clip": {"fetch": "vision-only", "sources": [source(f"{OPENAI}/RN50x4.pt", b"x")]},
                   "clipcap": {"fetch": "user-file", "sources": [], "hint": "Google Drive file id 1GYP"}}}]}
    (tmp_path / "catalogue.json").write_text(json.dumps(catalogue))
    monkeypatch.setenv("CAPTION_CATALOGUE", str(tmp_path / "catalogue.json"))
    with pytest.raises(hub.HubError, match=r"'clipcap' weights are not downloadable \(Google Drive file id 1GYP\)"
                                           r".*--clipcap PATH"):
        build_pack.main(["--preset", "coco-transformer", "--from-hub", "--downloads", str(tmp_path / "dl")])
