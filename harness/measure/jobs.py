"""A job is one (model, form, backend, device, precision, batch, threads); the planner crosses them."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from backends.base import JobSpec

# A GPU job is timed at two boundaries, as two jobs: CUDA events around the model alone (`device`) and
# host input to host output including copies and sync (`end-to-end`). Numbers never cross boundaries.
BOUNDARIES = {"cuda": ("device", "end-to-end")}
KEY_FIELDS = ("model", "form", "backend", "device", "precision", "batch", "threads", "boundary", "layout")
DEFAULTS = {"layout": "nchw"}  # key fields older records may lack


def key_label(key: Mapping[str, Any]) -> str:
    """One job key as people read it, the same in every table and report: every key field is spelt, so
    two keys never print alike (layout only when it is not the default NCHW)."""
    k = {**DEFAULTS, **key}
    label = (f"{k['model']} ({k['form']}) · {k['backend']} · {k['device']} · {k['precision']} · batch {k['batch']} · "
             f"{k['threads']} threads · boundary {k['boundary']}")
    return label if k["layout"] == DEFAULTS["layout"] else f"{label} · {k['layout']}"


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
        if self.layout != DEFAULTS["layout"]:
            raw += f".{self.layout}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)

    def spec(self) -> JobSpec:
        return JobSpec(**{f: getattr(self, f) for f in JobSpec.__dataclass_fields__})

    def as_dict(self) -> dict:
        return asdict(self)


def key_of(job: dict) -> tuple:
    """The key of a record's job dict (older records lack newer key fields: their defaults apply)."""
    return tuple(job.get(f, DEFAULTS.get(f)) for f in KEY_FIELDS)


def plan(models: list[str], backends: list[str], precisions: list[str], batches: list[int], threads: int,
         device: str = "cpu", form: str = "fused", input_sizes: dict[str, int] | None = None,
         layout: str = "nchw") -> list[Job]:
    """Every combination, model-major so a model's backends run back to back."""
    sizes = input_sizes or {}
    return [
        Job(model=m, backend=b, form=form, device=device, precision=p, batch=n, threads=threads,
            boundary=boundary, input_size=sizes.get(m, 224), layout=layout)
        for m, b, p, n, boundary in itertools.product(models, backends, precisions, batches,
                                                      BOUNDARIES.get(device, ("host-sync",)))
    ]
