"""What runs inside one measurement process: build, open, warm up, measure, check parity.

The runner forks a fresh process per repeat (from a fork server that has already imported torch, so
a process costs milliseconds, not seconds). Nothing here decides whether numbers are trustworthy;
it only measures and reports.
"""

from __future__ import annotations

import importlib
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import model_zoo
from backends import registry
from backends.base import OpenContext, Session, SkipJob
from harness import gpu, machine
from harness.environment import library_versions
from harness.jobs import Job
from harness.parity import compare
from harness.plugins import load_plugins
from harness.protocol import ProtocolConfig, measure
from harness.stats import summarize
from model_zoo.weights import state_sha256

TIMING_SEED = 0
PARITY_SEED = 1
WEIGHTS_SEED = 0


def input_tensor(job: Job, seed: int) -> np.ndarray:
    """The seeded float32 NCHW input, allocated before timing."""
    return np.random.default_rng(seed).standard_normal((job.batch, 3, job.input_size, job.input_size), dtype=np.float32)


def boundary_timer(session: Session, job: Job) -> Callable[[], int] | None:
    """The device timer for a `device`-boundary job; None (host clock around `run`) when `run` spans
    the job's boundary. A mismatch is an error, never a number under the wrong label."""
    if job.boundary == "device":
        if session.device_timer is None:
            raise RuntimeError(f"{job.backend} has no device timer, so it cannot measure the device boundary")
        return session.device_timer
    if job.boundary != session.boundary:
        raise RuntimeError(f"{job.backend} measures the {session.boundary} boundary, not {job.boundary}")
    return None


def measure_process(payload: dict[str, Any]) -> dict[str, Any]:
    load_plugins()
    job = Job(**payload["job"])
    cfg = ProtocolConfig.from_dict(payload["protocol"])
    before = machine.snapshot()
    probe = machine.probe(job.threads) if cfg.probe else {}
    torch.set_num_threads(job.threads)

    start = time.perf_counter()
    torch.manual_seed(WEIGHTS_SEED)
    model = model_zoo.create(job.model, form=job.form, weights=payload.get("weights"))
    build_s = time.perf_counter() - start
    weights_sha = state_sha256(model)
    info = {"params": model_zoo.count_params(model), "weights_sha256": weights_sha}
    parity_input = input_tensor(job, PARITY_SEED)
    reference = None
    if payload["parity"]:
        with torch.inference_mode():
            reference = model(torch.from_numpy(parity_input)).float().numpy()
    ctx = OpenContext(Path(payload["cache_dir"]), weights_sha, input_tensor(job, TIMING_SEED))

    backend = registry.load(payload["backend_ref"])
    try:
        session = backend.open(model, job.spec(), ctx)
    except SkipJob as skip:
        return {"skipped": skip.reason, "artifact": skip.artifact, "backend_info": skip.info, "model_info": info,
                "cold_start": {"build_s": build_s, **skip.cold}}
    t0 = time.perf_counter()
    session.run()
    first_ms = (time.perf_counter() - t0) * 1e3

    gpu_before = gpu.snapshot() if job.device == "cuda" else {}
    result = measure(session.run, cfg, timed_run=boundary_timer(session, job))
    after = machine.snapshot()
    gpu_state = {"before": gpu_before, "after": gpu.snapshot(), **session.memory()} if job.device == "cuda" else None
    parity = compare(session.infer(parity_input), reference, job.precision).as_dict() if reference is not None else None
    session.close()
    return {
        "samples_ns": result.samples_ns,
        "warmup_ns": result.warmup_ns,
        "warmup_converged": result.warmup_converged,
        "stop_reason": result.stop_reason,
        "wall_s": result.wall_s,
        "summary": summarize(result.samples_ns).as_dict(),
        "machine": machine.between(before, after),
        "probe": probe,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cold_start": {"build_s": build_s, **session.cold, "first_inference_ms": first_ms},
        "parity": parity,
        "artifact": session.artifact,
        "backend_info": session.info,
        "boundary": job.boundary,
        "gpu": gpu_state,
        "model_info": info,
        "libraries": library_versions(),
    }


def child_main(target: str, payload: dict[str, Any], conn) -> None:
    """Entry point of the forked process: send ("ok", target(payload)) or ("error", message, traceback)."""
    try:
        module, _, name = target.partition(":")
        conn.send(("ok", getattr(importlib.import_module(module), name)(payload)))
    except BaseException as exc:  # noqa: BLE001 - everything a job raises becomes its record
        lines = traceback.format_exception(exc)
        conn.send(("error", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500],
                   "".join(lines)[-4000:]))
    finally:
        conn.close()
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    """`python -m harness.worker PAYLOAD.json RESULT.json`: one measurement process started by path.

    Used when the process must run another interpreter (an environment with a different runtime
    version, for `bench compare --interleave`); the sweep itself forks from its fork server.
    """
    import json

    payload = json.loads(Path(argv[1]).read_text())
    try:
        outcome: tuple = ("ok", measure_process(payload))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as the job's error
        outcome = ("error", f"{type(exc).__name__}: {exc}"[:500], traceback.format_exc()[-4000:])
    Path(argv[2]).write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
