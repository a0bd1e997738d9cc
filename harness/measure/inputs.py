"""What a sweep's artifacts are built from besides the job, and where what outlives a command is kept: two
small objects the sweep, lockstep and the int8 study take instead of four loose parameters each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.calibration import CalibrationSpec


@dataclass(frozen=True)
class Inputs:
    """Trained weights (one checkpoint; None: seeded random) and each int8 model's calibration set
    (`harness.measure.calibration.for_jobs`; None: seeded random input)."""

    weights: str | None = None
    calibration: dict[str, CalibrationSpec] | None = None


@dataclass(frozen=True)
class Stores:
    """The artifact cache (None: the default, `ONEBENCH_CACHE` or ~/.cache/onebench) and the results index the
    records are added to as they are written (None: none)."""

    cache_dir: Path | None = None
    index_db: Path | None = None
