"""`bench profile`'s work, callable without the CLI: check the job and what it is compared with before any
work, profile each in a fresh process, and build the records.

The job is planned exactly as `bench run` plans it (same options, same checks), so the profile opens the
artifact a timed job of those options opens. What `--compare` names is another job (a backend, or the
same job with some key fields changed: `form=train`, `precision=int8`) or a stored profile record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from backends import registry
from backends.calibration import CalibrationSpec
from backends.options import ConfigError, canonical
from harness.errors import HarnessError
from harness.host import environment
from harness.measure.calibration import for_jobs
from harness.measure.jobs import Job
from harness.measure.launch import Launcher, LocalLauncher, Step
from harness.measure.outcomes import Failed, Skipped
from harness.measure.payload import JobPayload
from harness.measure.planner import check_choice, jobs
from harness.measure.selection import Selection, of_job
from harness.store import profile_records
from harness.store.job_key import job_id

TIMEOUT_S = 900.0  # a profile builds the artifact when it is not cached (a compile can take minutes)
PROFILE_TARGET = "harness.profile.capture:profile_process"
CHANGEABLE = ("backend", "form", "precision", "batch", "threads", "layout", "options")


class CannotProfile(HarnessError):
    """The job cannot be profiled on this machine (its runtime cannot run it here): nothing measured."""


@dataclasses.dataclass(frozen=True)
class Request:
    """One `bench profile` job with what its process needs."""

    job: Job
    weights: str | None
    calibration: CalibrationSpec | None
    iterations: int


def check_profiler(name: str) -> None:
    """A backend without a profiler is said so, with the backends that have one."""
    if not registry.get(name).profiler:
        having = [n for n in registry.names() if registry.get(n).profiler]
        raise HarnessError(f"{name} has no per-op profiler (a replayed CUDA graph, or a backend that does not offer "
                           f"one); profiles run on {', '.join(having)}")


def plan(selection: Selection, iterations: int) -> Request:
    """The one job `bench run` would time with this selection (one model, one backend), checked, with its
    calibration set (int8)."""
    if iterations < 1:
        raise HarnessError(f"--iterations must be at least 1, not {iterations}")
    for backend in selection.backends:
        if backend in registry.names():  # an unknown name is the planner's to refuse, with suggestions
            check_profiler(backend)
    found = jobs(selection)
    job = next((j for j in found if j.boundary != "end-to-end"), found[0])  # a GPU job's device boundary
    calibrations = for_jobs([job], selection.calibration, selection.calibration_size) if job.precision == "int8" else {}
    return Request(job, selection.weights, calibrations.get(job.model), iterations)


def compared(arg: str, base: Request, selection: Selection) -> Request | profile_records.ProfileRecord:
    """What `--compare ARG` names: a stored profile (a .json file), a backend, or FIELD=VALUE[,FIELD=VALUE]
    changing the job's key fields (an int8 side calibrates on the selection's calibration)."""
    path = Path(arg)
    if path.suffix == ".json" or path.is_file():
        return profile_records.read(path)
    changes = {"backend": arg} if "=" not in arg else {}
    for part in arg.split(",") if "=" in arg else []:
        field, _, value = (p.strip() for p in part.partition("="))
        if field not in CHANGEABLE:
            raise HarnessError(f"--compare {arg}: {field!r} cannot change; name a backend, a stored profile (.json), "
                               f"or FIELD=VALUE with FIELD one of {', '.join(CHANGEABLE)}")
        changes[field] = value
    for number in ("batch", "threads"):
        if number in changes and not changes[number].isdigit():
            raise HarnessError(f"--compare {arg}: {number} must be a whole number, not {changes[number]!r}")
    job = base.job
    backend = changes.get("backend", job.backend)
    options = job.options if backend == job.backend else ""
    if "options" in changes:  # the user's, in the records' form: checked by the backend's fields and the recipe's
        check_choice("backend", backend, registry.names())
        try:
            options = canonical(registry.get(backend), changes["options"])
        except ConfigError as exc:
            raise HarnessError(f"--compare {arg}: {exc}") from None
    other = plan(of_job(job, selection).but(
        backends=(backend,), precisions=(changes.get("precision", job.precision),),
        batches=(int(changes.get("batch", job.batch)),), threads=int(changes.get("threads", job.threads)),
        form=changes.get("form", job.form), channels_last=changes.get("layout", job.layout) == "nhwc",
        job_options=options), base.iterations)
    if other.job.key == job.key:
        raise HarnessError(f"--compare {arg} names the same job; change its backend, form, precision or another field")
    return other


def profile(request: Request, cache_dir: Path, launcher: Launcher | None = None) -> dict[str, Any]:
    """Profile the job in a fresh process, launched as every step is (this machine's fork server, or a lab's
    node: `--cluster`), and return its record (not yet saved) with the host it ran on. CannotProfile when no
    place the launcher reaches can run it; HarnessError when its process failed."""
    job = request.job
    launcher = launcher or LocalLauncher([job.backend])
    reason = launcher.cannot_run(job)
    if reason:
        raise CannotProfile(f"{job.backend} cannot run {job.model} here: {reason}")
    payload = JobPayload.of_job(job, cache_dir, weights=request.weights, calibration=request.calibration,
                                iterations=request.iterations)
    placed = launcher.submit(Step(job, PROFILE_TARGET, payload, TIMEOUT_S)).result()
    outcome = placed.outcome
    if isinstance(outcome, Failed):
        raise HarnessError(f"profiling {job.model} on {job.backend} failed: {outcome.message}")
    if isinstance(outcome, Skipped):
        raise CannotProfile(f"{job.backend} cannot time {job.model} here, so it cannot profile it: {outcome.reason}")
    body = outcome.result
    if "no_profiler" in body:
        raise HarnessError(body["no_profiler"])
    return {"schema_version": profile_records.SCHEMA_VERSION, "kind": "profile",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "job_id": job_id(job.as_dict()), "job": job.as_dict(), **body,
            "calibration": request.calibration.as_dict() if request.calibration else None, "host": placed.host or environment.capture()}
