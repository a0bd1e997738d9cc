"""Calibration inputs for int8 jobs: `--calibration DIR` / `--calibration-size N`, or seeded random input.

DIR is read in the layouts `bench accuracy` reads (class folders, or a flat folder of images; labels
are not needed), `N` images spread evenly over it, each through the model's own preprocessing. The
set is identified by content: the selected files' bytes, the preprocessing and the count, so an int8
artifact is rebuilt when any of them changes and never when the folder is only moved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from backends.calibration import RANDOM, Calibration, CalibrationSpec
from harness.errors import HarnessError
from model_zoo.preprocess import IMAGE_SUFFIXES, at_size, is_image, load_image, open_image, transform
from model_zoo.spec import Preprocess

DEFAULT_SIZE = 300  # NNCF's default subset size; ONNX Runtime's examples use a few hundred as well
RANDOM_SEED = 20260  # seeded random calibration: the same inputs (and artifact) on every machine


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _images(root: Path) -> list[Path]:
    """Every image of a flat folder or of its class folders, in a stable order (hidden ones left out)."""
    return [p for p in sorted(root.rglob("*")) if is_image(p) and not _hidden(p, root)]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """"1 image", "3 images" ("1 entry", "2 entries" with `nouns`)."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def skipped_note(root: Path) -> str | None:
    """What the folder holds that calibration leaves out, and why: hidden entries (a name starting with '.', by
    rule, as `ls` and ImageFolder do) and files that are not images; None when nothing was left out."""
    hidden = sorted(p.name for p in root.iterdir() if p.name.startswith("."))
    other = sum(1 for p in root.rglob("*") if p.is_file() and not _hidden(p, root) and not is_image(p))
    parts = []
    if hidden:
        shown = ", ".join(hidden[:5]) + (" …" if len(hidden) > 5 else "")
        parts.append(f"{plural(len(hidden), 'hidden entry', 'hidden entries')} ({shown}): a name starting "
                     "with '.' is hidden by rule")
    if other:
        parts.append(f"{plural(other, 'file')} that {'is not an image' if other == 1 else 'are not images'} "
                     f"(images end in {', '.join(sorted(IMAGE_SUFFIXES))})")
    return f"--calibration {root}: left out {'; '.join(parts)}" if parts else None


def _spread(paths: list[Path], size: int) -> list[Path]:
    """`size` paths spread evenly over the (class-sorted) list, so every class is represented."""
    idx = np.unique(np.linspace(0, len(paths) - 1, size).round().astype(int))
    return [paths[i] for i in idx]


def _readable(path: Path) -> bytes:
    """The image's bytes, once it is known to decode: a broken file is one line now, not a failed job later."""
    try:
        with open_image(path) as img:
            img.verify()
        return path.read_bytes()
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read calibration image {path} ({exc}); remove or replace it") from None


def check_size(size: int | None) -> int:
    size = DEFAULT_SIZE if size is None else size
    if size < 1:
        raise HarnessError(f"--calibration-size must be at least 1, not {size}")
    return size


def describe(folder: str | None, size: int | None, pre: Preprocess,
             say: Callable[[str], None] | None = None) -> CalibrationSpec:
    """The calibration a sweep's int8 jobs use, checked now (folder readable, enough images): the spec a
    process rebuilds it from and the record keeps.
    `say` hears what the folder holds that is left out (hidden entries, files that are not images)."""
    size = check_size(size)
    if folder is None:
        digest = hashlib.sha256(f"{RANDOM}|{RANDOM_SEED}|{size}|{pre.input_size}".encode()).hexdigest()
        return CalibrationSpec(RANDOM, size, digest)
    root = Path(folder)
    if not root.is_dir():
        raise HarnessError(f"--calibration {folder} is not a folder; give a folder of images (flat or in class folders)")
    paths = _images(root)
    left_out = skipped_note(root)
    if len(paths) < size:
        why = f" (left out: {left_out.split(': left out ', 1)[1]})" if left_out else ""
        raise HarnessError(f"--calibration {folder} holds {plural(len(paths), 'image')}, fewer than --calibration-size "
                           f"{size}{why}; add images or pass --calibration-size {max(len(paths), 1)}")
    if left_out and say:
        say(left_out)
    chosen = _spread(paths, size)
    h = hashlib.sha256(repr(sorted(asdict(pre).items())).encode())
    for path in chosen:
        h.update(_readable(path))
    return CalibrationSpec(str(root.resolve()), len(chosen), h.hexdigest())


def build(spec: CalibrationSpec, pre: Preprocess) -> Calibration:
    """The backend's view of a described calibration set; images are decoded only if it quantizes."""
    source, size = spec.source, spec.size

    def load(limit: int | None = None) -> np.ndarray:
        count = size if limit is None else min(size, limit)
        if source == RANDOM:
            rng = np.random.default_rng(RANDOM_SEED)
            return rng.standard_normal((size, 3, pre.input_size, pre.input_size), dtype=np.float32)[:count]
        fn = transform(pre)
        arrays = []
        for path in _spread(_images(Path(source)), size)[:count]:
            try:
                arrays.append(load_image(path, fn).numpy())
            except (OSError, ValueError) as exc:
                raise HarnessError(f"cannot read calibration image {path} ({exc}); remove or replace it") from None
        return np.stack(arrays).astype(np.float32)

    return Calibration(source, size, spec.sha256, load)


def for_jobs(jobs: list[Any], folder: str | None, size: int | None,
             say: Callable[[str], None] | None = None) -> dict[str, CalibrationSpec]:
    """The calibration set of every model with an int8 job, described (checked) before any work; what the
    folder leaves out is said once, not once per model."""
    import model_zoo

    heard: set[str] = set()

    def once(line: str) -> None:
        if say and line not in heard:
            heard.add(line)
            say(line)

    sizes = {job.model: job.input_size for job in jobs if job.precision == "int8"}
    return {model: describe(folder, size, at_size(model_zoo.get_spec(model).preprocess, sizes[model]), once)
            for model in sorted(sizes)}
