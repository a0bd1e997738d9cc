"""The profiling process: open the job's own artifact as a timed job does, time it plainly, profile it
under the runtime's profiler, time it plainly again, and name what the profiler saw in the model's terms.

Runs in a fresh process (`bench profile` starts it like a measurement process), so a runtime that crashes
under its profiler ends this profile only.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

import torch

import model_zoo
from backends.base import SkipJob
from harness.measure.jobs import Job
from harness.measure.payload import JobPayload
from harness.measure.protocol import WEIGHTS_SEED, measure, preset
from harness.measure.worker import boundary_timer, open_job
from harness.profile.attribution import by_order, conv_order
from harness.profile.kinds import Classifier, flops_by_kind, flops_by_module
from harness.profile.summary import kind_table, op_rows, totals

DEFAULT_ITERATIONS = 20
# The profiled inferences are split in this many rounds, each between two plain measurements of the same
# session: a host whose speed drifts moves both alike, instead of reading as the profiler's overhead.
ROUNDS = 4
PLAIN = preset("quick", max_s=0.5)  # each plain round: the quick preset's warm-up and samples, half a second at most


def _plain_ms(session, job: Job) -> list[float]:
    """A plain measurement of the session, in ms."""
    return [ns / 1e6 for ns in measure(session.run, PLAIN, timed_run=boundary_timer(session, job)).samples_ns]


def profile_process(payload: JobPayload) -> dict[str, Any]:
    """A profile record's body for `payload` (its `iterations`): plain and profiled
    inferences of the same session in alternating rounds, the profiled ones named and classified; or
    {"skipped": why} where the job cannot run here, {"no_profiler": why} where its session has none."""
    job, info, _, session, build_s = open_job(payload, parity=False)
    if isinstance(session, SkipJob):
        return {"skipped": session.reason}
    if session.profile is None:
        session.close()
        return {"no_profiler": f"{job.backend} has no per-op profiler for this job"}
    iterations = payload.iterations or DEFAULT_ITERATIONS
    per_round = math.ceil(iterations / min(ROUNDS, iterations))
    try:
        plain, parts = [_plain_ms(session, job)], []
        while sum(len(p.inferences) for p in parts) < iterations:
            parts.append(session.profile(min(per_round, iterations - sum(len(p.inferences) for p in parts))))
            plain.append(_plain_ms(session, job))
    finally:
        session.close()
    profiled = dataclasses.replace(parts[0], inferences=[i for p in parts for i in p.inferences],
                                   wall_ms=[w for p in parts for w in p.wall_ms])
    torch.manual_seed(WEIGHTS_SEED)  # a fresh copy to name ops by: the backend may have cast or moved its own
    model = model_zoo.create(job.model, form=job.form, weights=payload.weights).eval()
    classifier = Classifier(model)
    example = torch.zeros(job.batch, 3, job.input_size, job.input_size)
    flops = flops_by_module(model, example)
    profiled = by_order(profiled, conv_order(model, example))  # a compiled package's convolution calls
    pooled = statistics.median([ms for window in plain for ms in window])
    scale = statistics.median(profiled.wall_ms) if profiled.estimated else 1.0
    rows = op_rows(profiled, classifier, flops, scale)
    model_flops = flops_by_kind(classifier, flops)
    return {
        "profiler": {"tool": profiled.tool, "iterations": len(profiled.inferences), "estimated": profiled.estimated,
                     "notes": profiled.notes},
        "plain": {"p50_ms": pooled, "window_p50_ms": [statistics.median(window) for window in plain],
                  "samples": sum(len(window) for window in plain)},
        "totals": totals(profiled, rows, pooled),
        "rows": rows,
        "kinds": kind_table(rows, model_flops),
        "model_flops": sum(flops.values()),
        "artifact": session.artifact,
        "backend_info": session.info,
        "model_info": info,
        "cold_start": {"build_s": build_s, **session.cold},
    }
