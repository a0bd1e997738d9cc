"""Artifacts cached by key and checked by content before every use.

A cache key promises what a file holds (weights, tool versions, precision, shape). A truncated file or
another model's file in its place breaks that promise silently: the first gives an error on every later
run, the second times the wrong model. So every artifact is written the same way: built under a
temporary name, renamed into place (atomic: a reader never sees half a file), and then a sidecar
`<name>.sha256` records the hash of what was built. Before use the file is hashed again; a file with
no sidecar or another hash is built again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _content_hash(path: Path, companions: Sequence[str]) -> str:
    """The artifact's hash: its file, then each companion file (OpenVINO's .bin beside its .xml)."""
    parts = [file_sha256(path)] + [file_sha256(path.with_suffix(suffix)) for suffix in companions]
    return parts[0] if not companions else hashlib.sha256("|".join(parts).encode()).hexdigest()


def verified(path: Path, companions: Sequence[str] = ()) -> bool:
    """Whether `path` (and its companions) is what was built there: present, and its hash the sidecar's."""
    sidecar = _sidecar(path)
    if not (path.is_file() and sidecar.is_file() and all(path.with_suffix(s).is_file() for s in companions)):
        return False
    return sidecar.read_text().strip() == _content_hash(path, companions)


def recorded_sha256(path: Path) -> str:
    """The hash `cached` recorded for an artifact it has just verified or built: its identity in records,
    without hashing the file a second time."""
    return _sidecar(path).read_text().strip()


def cached(path: Path, build: Callable[[Path], None], companions: Sequence[str] = ()) -> bool:
    """Make sure a verified artifact is at `path`; return True when it had to be built. `build(tmp)` writes
    the artifact at `tmp` (and its companions beside it, same stem); several processes may build at once,
    the last rename wins and every one of them is complete."""
    if verified(path, companions):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        build(tmp)
        digest = _content_hash(tmp, companions)
        for suffix in companions:
            os.replace(tmp.with_suffix(suffix), path.with_suffix(suffix))
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, *(tmp.with_suffix(s) for s in companions)):
            leftover.unlink(missing_ok=True)
    side_tmp = _sidecar(tmp)
    side_tmp.write_text(digest + "\n")
    os.replace(side_tmp, _sidecar(path))
    return True


def remembered(path: Path, name: str, compute: Callable[[], dict]) -> dict:
    """What `compute` finds in a cached artifact (op counts, quantized-op counts), kept beside it as
    `<stem>.<name>.json` keyed by the artifact's recorded hash: every measurement process opens the
    artifact, and only the first parses it. A rebuilt artifact is examined again."""
    import contextlib
    import json

    memo = path.with_name(f"{path.stem}.{name}.json")
    try:
        identity = recorded_sha256(path)
    except OSError:
        identity = None
    try:
        kept = json.loads(memo.read_text())
        if identity and kept.get("sha256") == identity:
            return kept["value"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass
    value = compute()
    if identity:
        with contextlib.suppress(OSError):  # a cache of a cache: without it the next process computes again
            memo.write_text(json.dumps({"sha256": identity, "value": value}))
    return value
