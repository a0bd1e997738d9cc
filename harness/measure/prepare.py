"""Build the artifacts a sweep will time (ONNX exports, OpenVINO IR, AOTInductor packages, TensorRT
engines) before it runs, several at a time.

A sweep prepares one job at a time, because round 0 also times each job's first inference and that
must not share the machine with a compile. Compiles dominate some sweeps: an AOTInductor package for
CUDA took over 80 s on the borrowed H200 machine, so ten of them alone outlast an 8-minute GPU check.
Nothing is timed here, so the builds can overlap; every backend caches its artifact by content key
(weights, versions, precision, shape, device), and the sweep that follows only loads them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from backends import registry
from backends.calibration import CalibrationSpec
from harness.errors import HarnessError
from harness.measure.calibration import for_jobs
from harness.measure.jobs import Job
from harness.measure.launch import cannot_prepare, mp_context, run_in_process
from harness.measure.outcomes import Failed, Skipped
from harness.measure.payload import JobPayload

BUILD_TIMEOUT_S = 1800.0  # one artifact; a hang is killed and reported, the others go on


@dataclass(frozen=True)
class Prepared:
    job: Job
    status: str  # built, ready (the backend has no artifact: eager), skipped or error
    seconds: float
    message: str = ""
    artifact: str = ""
    cold: dict[str, float] | None = None


def artifact_jobs(jobs: list[Job]) -> list[Job]:
    """One job per artifact: jobs that differ only in the timing boundary run the same file."""
    first: dict[tuple, Job] = {}
    for job in jobs:
        first.setdefault(tuple(sorted((k, str(v)) for k, v in job.as_dict().items() if k != "boundary")), job)
    return list(first.values())


def default_workers() -> int:
    """Half the cores, at most 4: each build runs its own compiler processes too."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def prepare_artifacts(jobs: list[Job], cache_dir: Path, workers: int, weights: str | None = None,
                      done: Callable[[Prepared], None] | None = None,
                      timeout_s: float = BUILD_TIMEOUT_S,
                      calibration: dict[str, CalibrationSpec] | None = None) -> list[Prepared]:
    """Build every distinct artifact of `jobs` into `cache_dir`, `workers` at a time, each in its own
    process (a crash or hang costs that artifact only). A backend whose builds start their own compiler
    pool says how to size it (`build_env(cores)`), so `workers` builds share the machine's cores."""
    if workers < 1:
        raise HarnessError(f"--workers must be at least 1, not {workers}")
    unique = artifact_jobs(jobs)
    cores = max(1, (os.cpu_count() or 1) // workers)
    for name in sorted({j.backend for j in unique}):
        for key, value in registry.get(name).build_env(cores).items():
            os.environ.setdefault(key, value)  # before the fork server starts: every build inherits it
    mpctx = mp_context(sorted({j.backend for j in unique}))
    calibrations = calibration if calibration is not None else for_jobs(unique, None, None)

    def one(job: Job) -> Prepared:
        reason = cannot_prepare(job)
        if reason:
            result = Prepared(job, "skipped", 0.0, reason)
        else:
            payload = JobPayload.of_job(job, cache_dir, weights=weights, calibration=calibrations.get(job.model))
            start = time.perf_counter()
            outcome = run_in_process(mpctx, payload, timeout_s, target="harness.measure.worker:build_artifact")
            seconds = time.perf_counter() - start
            if isinstance(outcome, Failed):
                result = Prepared(job, "error", seconds, outcome.message)
            elif isinstance(outcome, Skipped):
                path = (outcome.prepared.get("artifact") or {}).get("path", "")
                result = Prepared(job, "skipped", seconds, outcome.reason, path, outcome.prepared.get("cold_start"))
            else:
                built = outcome.result
                path = (built.get("artifact") or {}).get("path", "")
                result = Prepared(job, "built" if path else "ready", seconds, "", path, built.get("cold_start"))
        if done:
            done(result)
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, unique))


def describe(result: Prepared) -> str:
    """One line per artifact, for the terminal and the GPU check's log."""
    j = result.job
    head = f"{result.status:7} {j.model} · {j.backend} · {j.device} · {j.precision} · batch {j.batch}"
    if result.status == "ready":
        return f"{head}: nothing to build"
    if result.status != "built":
        return f"{head}: {result.message}"
    cold = result.cold or {}
    parts = [f"{k} {v:.1f} s" for k, v in cold.items() if k.endswith("_s") and k != "build_s" and v]
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{head} in {result.seconds:.1f} s{detail} → {result.artifact}"
