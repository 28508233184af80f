"""
Fetch the published files a catalogue model needs (src/shared/catalogue.json; docs/model-install.md section 1), in
the same order and with the same checks as the extension's download manager, for `build_pack.py --from-hub`:

    npm run pack:build -- --preset coco --from-hub [--out DIR]

* Sources are tried in catalogue order; the next one is tried when a source cannot be reached, answers 404 (or any
  other 4xx), still answers 5xx after the retries, or delivers the wrong size or SHA-256.
* A download interrupted mid-file resumes with an HTTP Range request from the bytes already on disk.
* Every file is checked against the catalogue's size and SHA-256 before it is used; a file that fails is deleted
  and named in the error with the expected and the actual hash. Where the catalogue pins null (not verified yet),
  the size and SHA-256 the server declares (the Hub's X-Linked-Size / X-Linked-Etag on its redirect) stand in, as
  in the extension; the pack's provenance records which check each input passed (`check`).
* Files are cached under downloads/ (git-ignored) by hash, so a second build downloads nothing.
* `fetch: "vision-only"` is a range-reading optimisation of the extension; Python needs the whole archive to open
  it, so it downloads the whole file and checks its hash. `fetch: "user-file"` takes the path given by the user
  (--clipcap), checked against a pinned SHA-256 when the catalogue has one.

Environment, as for the extension's build (Vite `define`): CAPTION_CATALOGUE replaces the catalogue file;
CAPTION_MIRROR_BASE rewrites every source `https://HOST/PATH` to `${CAPTION_MIRROR_BASE}/HOST/PATH`.
"""

import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOGUE = os.path.join(REPO, "src", "shared", "catalogue.json")
DOWNLOADS = os.path.join(REPO, "downloads")
ATTEMPTS = 3  # per source, for connection errors, cut transfers and 5xx answers
BACKOFF_S = 1.0  # doubled after each failed attempt
TIMEOUT_S = 60
CHUNK = 1 << 20


class HubError(RuntimeError):
    """A catalogue model's files could not be fetched or verified; the message names the file and each source's
    failure (and, for a hash mismatch, the expected and the actual SHA-256)."""


class _SourceFailed(Exception):
    """This source cannot deliver the file; try the next one."""


class _Retry(Exception):
    """A transient failure (connection, cut transfer, 5xx); try the same source again, resuming."""


def log(msg: str):
    print(f"[hub {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -----------------------------------------------------------------------------
# The catalogue


def load_catalogue(path: Optional[str] = None) -> dict:
    path = path or os.environ.get("CAPTION_CATALOGUE") or CATALOGUE
    try:
        with open(path) as f:
            cat = json.load(f)
    except FileNotFoundError:
        raise HubError(f"catalogue {path} does not exist (set CAPTION_CATALOGUE to another catalogue file)") from None
    except json.JSONDecodeError as e:
        raise HubError(f"catalogue {path} is not valid JSON: {e}") from e
    if cat.get("format") != "clipcap-catalogue" or cat.get("formatVersion") != 1:
        raise HubError(f"{path} is not a clipcap-catalogue, formatVersion 1")
    return cat


def find_model(catalogue: dict, model_id: str) -> dict:
    for m in catalogue.get("models", []):
        if m.get("id") == model_id:
            return m
    ids = ", ".join(m.get("id", "?") for m in catalogue.get("models", []))
    raise HubError(f"the catalogue has no model {model_id!r} (it lists: {ids})")


def mirror_url(url: str, base: Optional[str] = None) -> str:
    """https://HOST/PATH -> ${base}/HOST/PATH when a mirror base is set (argument, else CAPTION_MIRROR_BASE)."""
    base = os.environ.get("CAPTION_MIRROR_BASE") if base is None else base
    if not base:
        return url
    u = urllib.parse.urlsplit(url)
    rest = u.path + (f"?{u.query}" if u.query else "")
    return f"{base.rstrip('/')}/{u.netloc}{rest}"


# -----------------------------------------------------------------------------
# Downloading one file


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_path(source: dict, cache_dir: str) -> str:
    """downloads/<first 16 hex of the pinned SHA-256>-<file name>: the hash names the content, so two mirrors of one
    file share a cache entry and a changed pin never reuses a stale file. An unpinned source is keyed by its URL."""
    name = os.path.basename(urllib.parse.urlsplit(source["url"]).path) or "file"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if source.get("format") == "safetensors" and not name.endswith(".safetensors"):
        name += ".safetensors"  # official.read_state_dict recognises safetensors by the extension
    key = source.get("sha256") or "url-" + hashlib.sha256(source["url"].encode()).hexdigest()
    return os.path.join(cache_dir, f"{key[:16]}-{name}")


def _declared_sha256(headers) -> Optional[str]:
    """A SHA-256 the server states: X-Linked-Etag (the Hub sets it to the LFS object id), or a 64-hex ETag."""
    for h in ("X-Linked-Etag", "ETag"):
        v = (headers.get(h) or "").strip()
        v = v[2:] if v.startswith("W/") else v
        v = v.strip('"').lower()
        if re.fullmatch(r"[0-9a-f]{64}", v):
            return v
    return None


class _RecordRedirects(urllib.request.HTTPRedirectHandler):
    """The Hub puts X-Linked-Size and X-Linked-Etag on its 302, not on the CDN's answer: keep each hop's headers."""

    def __init__(self):
        self.hops = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.hops.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _learn(facts: dict, headers, what: str):
    """Record the size and SHA-256 a server declares; a server contradicting the pins or itself is refused."""
    for key, value in (("size", headers.get("X-Linked-Size")), ("sha256", _declared_sha256(headers))):
        if value is None:
            continue
        value = int(value) if key == "size" else value
        pinned = facts.get("pinned_" + key)
        if pinned is not None and value != pinned:
            raise _SourceFailed(f"{what} declares {key} {value}, the catalogue pins {pinned}")
        if facts.get(key) is not None and facts[key] != value:
            raise _SourceFailed(f"{what} declared {key} {facts[key]}, now {value}")
        facts[key] = value


def _transfer(url: str, part: str, facts: dict, timeout: float):
    """One HTTP request appending to `part` from its current size. Raises _Retry or _SourceFailed.
    facts: pinned_size/pinned_sha256 from the catalogue, size/sha256 as declared by the server (filled in here)."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": "clipcap-pack-builder", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    redirects = _RecordRedirects()
    opener = urllib.request.build_opener(redirects)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            for hop in redirects.hops:
                _learn(facts, hop, "the redirect")
            _learn(facts, r.headers, "the server")
            if r.status == 206:
                m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", r.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    raise _SourceFailed(f"answered Range bytes={have}- with Content-Range "
                                        f"{r.headers.get('Content-Range')!r}")
                total = int(m.group(3)) if m.group(3) != "*" else None
                mode = "ab"
            else:  # 200: the whole file (a server without Range support, or a fresh start)
                have, mode = 0, "wb"
                length = r.headers.get("Content-Length")
                total = int(length) if length is not None else None
            if total is not None:
                _learn(facts, {"X-Linked-Size": total}, "the transfer")
            expected = facts.get("pinned_size") or facts.get("size")
            if expected is None:
                raise _SourceFailed("neither the catalogue nor the server gives the file's size")
            with open(part, mode) as f:
                while True:
                    chunk = r.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    have += len(chunk)
                    if have > expected:
                        raise _SourceFailed(f"sent more than the {expected} bytes expected")
    except urllib.error.HTTPError as e:
        if e.code == 416:  # our partial file is no prefix this server accepts: start over
            os.remove(part)
            raise _Retry("HTTP 416 for the resumed range") from None
        if e.code >= 500 or e.code == 429:
            raise _Retry(f"HTTP {e.code}") from None
        raise _SourceFailed(f"HTTP {e.code}") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError) as e:
        raise _Retry(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None
    if have < expected:
        raise _Retry(f"connection closed after {have} of {expected} bytes")


def _check_kind(facts: dict) -> str:
    """How a whole download was verified, in the extension's words (src/installer/installer.ts InputCheck)."""
    if facts.get("pinned_sha256"):
        return "sha256-pinned"
    if facts.get("sha256"):
        return "sha256-server"
    return "size-pinned" if facts.get("pinned_size") else "size-server"


def download(source: dict, cache_dir: str = DOWNLOADS, attempts: Optional[int] = None,
             timeout: float = TIMEOUT_S) -> dict:
    """Download one catalogue source into the cache, resuming a partial file, and verify it against the pinned size
    and SHA-256, or, where the catalogue pins none (null), against what the server declares (X-Linked-Size,
    X-Linked-Etag), as the extension does. Returns {path, bytes, sha256, check}. Raises _SourceFailed (with the
    reason) when this source cannot deliver the right bytes."""
    final = cache_path(source, cache_dir)
    name = os.path.basename(final)
    record = final + ".json"  # what was verified, so that a cached unpinned file is reused only as it was checked
    pinned_sha = (source.get("sha256") or "").lower() or None
    facts = {"pinned_size": int(source["bytes"]) if source.get("bytes") else None, "pinned_sha256": pinned_sha}
    if os.path.exists(final) and os.path.exists(record):
        with open(record) as f:
            done = json.load(f)
        if (done.get("url") == source["url"] and os.path.getsize(final) == done["bytes"]
                and sha256_file(final) == done["sha256"] and (pinned_sha in (None, done["sha256"]))
                and facts["pinned_size"] in (None, done["bytes"])):
            return {k: done[k] for k in ("path", "bytes", "sha256", "check")} | {"path": final}
    for stale in (final, record):
        if os.path.exists(stale):
            os.remove(stale)  # damaged, or checked against other pins: fetch again
    os.makedirs(cache_dir, exist_ok=True)
    part = final + ".part"
    url = mirror_url(source["url"])
    attempts = ATTEMPTS if attempts is None else attempts
    last = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            _transfer(url, part, facts, timeout)
            break
        except _Retry as e:
            last = str(e)
            log(f"{name}: {url}: {last} (attempt {attempt + 1}/{attempts})")
        except _SourceFailed:
            if os.path.exists(part):
                os.remove(part)
            raise
    else:
        raise _SourceFailed(f"gave up after {attempts} attempts: {last}")  # the partial file stays, for a resume
    actual = sha256_file(part)
    want = pinned_sha or facts.get("sha256")
    if want and actual != want:
        os.remove(part)
        raise _SourceFailed(f"SHA-256 mismatch for {name}: expected {want}"
                            f"{'' if pinned_sha else ' (declared by the server)'}, got {actual}; the download was "
                            "deleted")
    check = _check_kind(facts)
    if not want:
        log(f"{name}: no SHA-256 pinned or declared; checked by size only ({check}), SHA-256 {actual}")
    os.replace(part, final)
    done = {"url": source["url"], "path": final, "bytes": os.path.getsize(final), "sha256": actual, "check": check}
    with open(record, "w") as f:
        json.dump(done, f)
    return done


def fetch_input(role: str, spec: dict, cache_dir: str = DOWNLOADS, user_file: Optional[str] = None,
                attempts: Optional[int] = None) -> dict:
    """One input role: the first source that delivers verified bytes (or the user's file). Returns
    {role, path, url, format, bytes, sha256}."""
    if user_file or spec.get("fetch") == "user-file" or not spec.get("sources"):
        if not user_file:
            hint = f" ({spec['hint']})" if spec.get("hint") else ""
            raise HubError(f"input {role!r} is a file you download yourself{hint}; pass its path")
        if not os.path.isfile(user_file):
            raise HubError(f"input {role!r}: {user_file} does not exist")
        actual = sha256_file(user_file)
        # the user's copy of a published file must be that file: any hash the catalogue pins for this input
        pinned = {h.lower() for h in [spec.get("sha256")] + [s.get("sha256") for s in spec.get("sources", [])] if h}
        if pinned and actual not in pinned:
            raise HubError(f"input {role!r}: SHA-256 mismatch for {user_file}: expected "
                           f"{' or '.join(sorted(pinned))}, got {actual}")
        return {"role": role, "path": user_file, "url": None, "format": spec.get("format"),
                "bytes": os.path.getsize(user_file), "sha256": actual,
                "check": "sha256-pinned" if pinned else "user-file"}
    failures: List[str] = []
    for source in spec["sources"]:
        try:
            t = time.time()
            got = download(source, cache_dir, attempts)
            log(f"{role}: {source['url']} ok ({got['bytes'] / 1e6:.1f} MB, {got['check']}, {time.time() - t:.0f}s)")
            return {"role": role, "url": source["url"], "format": source.get("format"), **got}
        except _SourceFailed as e:
            failures.append(f"{mirror_url(source['url'])}: {e}")
            log(f"{role}: {failures[-1]}; trying the next source")
    raise HubError(f"input {role!r}: no source delivered the file:\n  " + "\n  ".join(failures))


def fetch_model(model: dict, cache_dir: str = DOWNLOADS, user_files: Optional[Dict[str, str]] = None,
                attempts: Optional[int] = None) -> Dict[str, dict]:
    """Every input of a catalogue model: {role: fetch_input result}."""
    user_files = user_files or {}
    return {role: fetch_input(role, spec, cache_dir, user_files.get(role), attempts)
            for role, spec in model.get("inputs", {}).items()}
