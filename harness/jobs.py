"""A job is one (model, form, backend, device, precision, batch, threads); the planner crosses them."""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass

from backends.base import JobSpec

BOUNDARY = {"cpu": "host-sync"}
KEY_FIELDS = ("model", "form", "backend", "device", "precision", "batch", "threads", "boundary")


@dataclass(frozen=True)
class Job(JobSpec):
    """A backend's `JobSpec` plus the timing boundary, which completes the key."""

    boundary: str = "host-sync"

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, f) for f in KEY_FIELDS)

    @property
    def id(self) -> str:
        """A file-name-safe id that spells the key."""
        raw = f"{self.model}.{self.form}.{self.backend}.{self.device}.{self.precision}.b{self.batch}.t{self.threads}.{self.boundary}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)

    def spec(self) -> JobSpec:
        return JobSpec(**{f: getattr(self, f) for f in JobSpec.__dataclass_fields__})

    def as_dict(self) -> dict:
        return asdict(self)


def plan(models: list[str], backends: list[str], precisions: list[str], batches: list[int], threads: int,
         device: str = "cpu", form: str = "fused", input_sizes: dict[str, int] | None = None) -> list[Job]:
    """Every combination, model-major so a model's backends run back to back."""
    sizes = input_sizes or {}
    return [
        Job(model=m, backend=b, form=form, device=device, precision=p, batch=n, threads=threads,
            boundary=BOUNDARY.get(device, "host-sync"), input_size=sizes.get(m, 224))
        for m, b, p, n in itertools.product(models, backends, precisions, batches)
    ]
