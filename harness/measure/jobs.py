"""A job is one (model, form, backend, device, precision, batch, threads, options); the planner crosses them."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from backends import int8_recipe
from backends.base import JobSpec
from backends.options import RECIPE
from harness.store.job_key import KEY_FIELDS, job_id

# A GPU job is timed at two boundaries, as two jobs: CUDA events around the model alone (`device`) and
# host input to host output including copies and sync (`end-to-end`). Numbers never cross boundaries.
BOUNDARIES = {"cuda": ("device", "end-to-end")}


@dataclass(frozen=True)
class Job(JobSpec):
    """A backend's `JobSpec` plus the timing boundary, which completes the key."""

    boundary: str = "host-sync"

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, f) for f in KEY_FIELDS)

    @property
    def id(self) -> str:
        return job_id(self.as_dict())

    def spec(self) -> JobSpec:
        return JobSpec(**{f: getattr(self, f) for f in JobSpec.__dataclass_fields__})

    def as_dict(self) -> dict:
        return asdict(self)


def plan(models: list[str], backends: list[str], precisions: list[str], batches: list[int], threads: int,
         device: str = "cpu", form: str = "fused", input_sizes: dict[str, int] | None = None,
         layout: str = "nchw", options: Mapping[str, str] | None = None) -> list[Job]:
    """Every combination, model-major so a model's backends run back to back; `options` maps a backend to its
    canonical options, and "int8" to the recipe every int8 job carries after its backend's own."""
    sizes, options = input_sizes or {}, options or {}
    return [
        Job(model=m, backend=b, form=form, device=device, precision=p, batch=n, threads=threads,
            boundary=boundary, input_size=sizes.get(m, 224), layout=layout,
            options=int8_recipe.join(options.get(b, ""), options.get(RECIPE, "") if p == "int8" else ""))
        for m, b, p, n, boundary in itertools.product(models, backends, precisions, batches,
                                                      BOUNDARIES.get(device, ("host-sync",)))
    ]
