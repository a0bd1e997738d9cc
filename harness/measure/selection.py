"""Which jobs a command means: one frozen object built once from the shared CLI options (`harness.cli.selection`)
and handed to the one planner (`harness.measure.planner.jobs`), instead of a dozen loose parameters per call."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from backends.base import JobSpec


@dataclass(frozen=True, kw_only=True)
class Selection:
    """A command's selection of jobs, built by keyword (fourteen fields by position were one slip from a swapped
    pair); empty tuples mean the command's defaults (the mission's models, every
    available CPU backend, each backend's default precision, batch 1)."""

    models: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    batches: tuple[int, ...] = ()
    threads: int = 1
    device: str = "cpu"
    form: str = "fused"
    channels_last: bool = False
    options: tuple[str, ...] = ()  # `-o BACKEND.FIELD=VALUE` and `-o int8.FIELD=VALUE` items
    weights: str | None = None
    compute_units: tuple[str, ...] = ()
    input_size: int | None = None  # every model at N x N instead of its own resolution
    calibration: str | None = None  # int8: a folder of images, or None for seeded random input
    calibration_size: int | None = None
    # one planned job's options, canonical (`of_job`): planned as they are, never turned back into -o items
    job_options: str | None = None

    def __post_init__(self) -> None:  # lists from typer become tuples: the selection stays hashable and frozen
        for name in ("models", "backends", "precisions", "batches", "options", "compute_units"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))

    def but(self, **changes: object) -> Selection:
        """The same selection with some fields changed (`dataclasses.replace`, read aloud)."""
        return dataclasses.replace(self, **changes)


def of_job(job: JobSpec, base: Selection) -> Selection:
    """The selection of exactly `job` (its model, backend, precision, batch, threads, options), keeping `base`'s
    weights, calibration and resolution: how a command hands one planned job to accuracy or a search."""
    return base.but(models=(job.model,), backends=(job.backend,), precisions=(job.precision,), batches=(job.batch,),
                    threads=job.threads, device=job.device, form=job.form, channels_last=job.layout == "nhwc",
                    options=(), job_options=job.options, compute_units=())
