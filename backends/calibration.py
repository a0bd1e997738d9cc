"""The inputs an int8 quantizer calibrates its activation ranges on, as a backend sees them.

The harness builds it (`harness.evaluate.calibration`: images through the model's own preprocessing,
or seeded random input), hashes it by content, and loads the arrays only when a backend actually
quantizes: a cached int8 artifact never reads an image. Random calibration gives a valid latency and
an accuracy that means nothing; `meaningful` says which, and every record, cell and point repeats it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

RANDOM = "random"


@dataclass(frozen=True)
class CalibrationSpec:
    """A calibration set as it travels to a process and as records name it: described (and checked) once by
    the harness, rebuilt into inputs only where a backend quantizes."""

    source: str  # the folder's path, or "random"
    size: int  # images the quantizer sees
    sha256: str  # the inputs' content (files, preprocessing, size), for artifact keys

    @property
    def meaningful(self) -> bool:
        """False for random calibration: the artifact's accuracy then says nothing about real data."""
        return self.source != RANDOM

    def as_dict(self) -> dict[str, object]:
        """What a record names (and a process boundary carries): the fields and `meaningful`."""
        return {"source": self.source, "size": self.size, "sha256": self.sha256, "meaningful": self.meaningful}

    @classmethod
    def of(cls, data: dict[str, object] | CalibrationSpec | None) -> CalibrationSpec | None:
        """The spec of a record's or a payload's block (None stays None)."""
        if data is None or isinstance(data, CalibrationSpec):
            return data
        return cls(str(data["source"]), int(data["size"]), str(data["sha256"]))


@dataclass(frozen=True)
class Calibration:
    source: str  # the folder's path, or "random"
    size: int  # images the quantizer sees
    digest: str  # sha256 of the inputs' content (files, preprocessing, size), for artifact keys
    # the first `n` inputs (all when None) as (n, 3, H, W) float32, preprocessed
    load: Callable[[int | None], np.ndarray] = field(repr=False, compare=False)

    @property
    def meaningful(self) -> bool:
        return self.spec.meaningful

    def batches(self, batch: int, limit: int | None = None) -> Iterator[np.ndarray]:
        """The inputs (the first `limit`) in the artifact's fixed batch (a short last batch is dropped; at
        least one batch)."""
        arrays = self.load(limit)
        usable = max(batch, len(arrays) - len(arrays) % batch)
        if len(arrays) < usable:  # fewer images than one batch: repeat them to fill it
            arrays = np.concatenate([arrays] * -(-usable // len(arrays)))[:usable]
        for start in range(0, usable, batch):
            yield np.ascontiguousarray(arrays[start:start + batch], dtype=np.float32)

    @property
    def spec(self) -> CalibrationSpec:
        return CalibrationSpec(self.source, self.size, self.digest)

    def describe(self) -> dict[str, object]:
        """What a record names: where the inputs came from, how many, their hash, whether accuracy means anything."""
        return self.spec.as_dict()


def require(calibration: Calibration | None, backend: str) -> Calibration:
    """A backend quantizing without calibration is a harness bug, not a user error: say so plainly."""
    if calibration is None:
        raise RuntimeError(f"{backend}: an int8 job was opened without calibration inputs")
    return calibration
