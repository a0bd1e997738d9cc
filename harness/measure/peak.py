"""The machine's GEMM ceiling per precision and thread count, the denominator of every job's efficiency.

A ceiling must be a ceiling: torch's `mm` alone was not (#49: ONNX Runtime's MobileOne-S0 read 173% of it,
OpenVINO's 202%, on an AMD EPYC whose torch BLAS runs below those runtimes' convolutions). The peak is the
best of torch's `mm` and, for fp32, of each runtime in the sweep that declares `peak_probe`: the zoo's GEMM
probe (`model_zoo.probes`, one 1024x1024x1024 product as a 1x1 convolution) opened through that runtime as a
job of it would be, in its own process (a runtime that crashes costs its probe, not the sweep), best of 8
after 3 warm-up inferences. Which one set the peak is kept beside it (`host.peak_source`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backends import registry
from harness.host.machine import PEAK_PRECISIONS, peak_gflops, peak_key, times_ns

PROBE_TIMEOUT_S = 300.0  # an export and a compile of a one-layer network on a busy 2-core machine
if TYPE_CHECKING:
    from harness.measure.payload import JobPayload

TARGET = "harness.measure.peak:runtime_probe"
WARMUP, REPS = 3, 8


def probing_backends(jobs: list[Any]) -> list[str]:
    """The sweep's CPU backends whose own GEMM the peak must include: available here and declaring it."""
    names = sorted({j.backend for j in jobs if j.device == "cpu" and j.backend in registry.BUILTIN})
    found = []
    for name in names:
        backend = registry.load(registry.BUILTIN[name])  # the built-in, never a plugin's wrapper of it
        if backend.peak_probe and backend.availability().ok:
            found.append(name)
    return found


def runtime_probe(payload: JobPayload) -> dict[str, float]:
    """In a measurement process: one runtime's GFLOP/s on the GEMM probe (the payload's job) at its threads,
    best of REPS."""
    import torch

    import model_zoo
    from backends.base import OpenContext
    from model_zoo import probes
    from model_zoo.weights import state_sha256

    torch.set_num_threads(payload.job.threads)
    model = model_zoo.create(probes.NAME)
    x = np.random.default_rng(probes.SEED).standard_normal((1, 3, probes.SIZE, probes.SIZE), dtype=np.float32)
    session = registry.load(payload.backend_ref).open(model, payload.job.spec(),
                                                      OpenContext(Path(payload.cache_dir), state_sha256(model), x))
    try:
        for _ in range(WARMUP):
            session.run()
        best = min(times_ns(session.run, REPS))
    finally:
        session.close()
    return {"gflops": 2 * probes.macs() / best}


def peaks(jobs: list[Any], cache_dir: Path, ctx: Any = None) -> tuple[dict[str, float], dict[str, str]]:
    """For each CPU precision and thread count of `jobs` ("fp32/1t"): the best GFLOP/s of torch's `mm` and of
    the sweep's probing runtimes (fp32), and which one it was. A probe that fails leaves the others."""
    from harness.measure.jobs import Job
    from harness.measure.launch import mp_context, run_in_process
    from harness.measure.outcomes import Done
    from harness.measure.payload import JobPayload
    from model_zoo import probes

    wanted = sorted({(j.precision, j.threads) for j in jobs if j.device == "cpu" and j.precision in PEAK_PRECISIONS})
    runtimes = probing_backends(jobs) if any(p == "fp32" for p, _ in wanted) else []
    # the sweep's own fork server (its preload list counts only when the interpreter's first one starts)
    ctx = ctx if ctx is not None or not runtimes else mp_context(sorted({j.backend for j in jobs}))
    best: dict[str, float] = {}
    source: dict[str, str] = {}
    for precision, threads in wanted:
        key = peak_key(precision, threads)
        best[key], source[key] = round(peak_gflops(threads, precision), 2), "torch.mm"
        for name in runtimes if precision == "fp32" else []:
            probe = Job(probes.NAME, name, threads=threads, input_size=probes.SIZE)  # the runtime's own, never a plugin's wrapper
            payload = JobPayload(job=probe, backend_ref=registry.BUILTIN[name], cache_dir=str(cache_dir))
            outcome = run_in_process(ctx, payload, PROBE_TIMEOUT_S, target=TARGET)
            if isinstance(outcome, Done) and outcome.result["gflops"] > best[key]:
                best[key], source[key] = round(outcome.result["gflops"], 2), f"{name} 1x1 conv"
    return best, source
