"""What a cluster node runs for one step of a job: the same isolated process a local sweep forks.

The Ray task is a thin shell: it checks the job against this node's own runtimes, points the payload at
this node's artifact cache (artifacts are built on the node that times them), forks the step from this
node's fork server, and returns the outcome with the node's id and host block (the machine the record
names). A crash in a native runtime kills the forked process, not the Ray worker.
"""

from __future__ import annotations

import functools
import platform
import time
from pathlib import Path
from typing import Any

from harness.cluster.labels import PREFIX, node_backends, token
from harness.measure.jobs import Job
from harness.measure.launch import (
    MEASURE,
    ON_DEVICE_BOUNDARY,
    cannot_prepare,
    mp_context,
    run_in_process,
)
from harness.measure.outcomes import Outcome, Skipped
from harness.measure.payload import CountPayload, JobPayload


@functools.lru_cache(maxsize=1)
def _context(backends: tuple[str, ...]) -> Any:
    """This Ray worker's fork server, with the runtimes of the node's backends imported once (as a local
    sweep's has those of its backends): the first step a worker runs starts it."""
    return mp_context(backends)


@functools.lru_cache(maxsize=8)
def _peaks(precision: str, threads: int, backend: str, cache_dir: str, ctx: Any) -> tuple[dict[str, float], dict[str, str]]:
    """This node's GEMM peak for a precision, thread count and the job's runtime, measured once per Ray worker
    process (`harness.measure.peak`: torch's `mm` and that runtime's own GEMM where it declares one)."""
    from harness.measure.jobs import Job
    from harness.measure.peak import peaks

    return peaks([Job("gemm_probe", backend, precision=precision, threads=threads)], Path(cache_dir), ctx)


def host_block(machine: str, job: Job, cache_dir: str, ctx: Any) -> dict[str, Any]:
    """This node's host block for a record of `job`: the machine's name (its `machine` label) first."""
    from harness.host import environment

    host = environment.capture()
    host["machine"] = machine
    host["peak_gflops"], host["peak_source"] = _peaks(job.precision, job.threads, job.backend, cache_dir, ctx) if job.device == "cpu" else ({}, {})
    return host


def run_step(target: str, payload: JobPayload | CountPayload, timeout_s: float) -> dict[str, Any]:
    """The Ray task's body: {"outcome", "node", "host", "span"} (`span`: when the step held the node, wall clock)."""
    import ray

    from harness.plugins import load_plugins
    from harness.store.runs import default_cache_dir

    started = time.time()
    load_plugins()
    context = ray.get_runtime_context()
    node = context.get_node_id()
    me = next((n for n in ray.nodes() if n["NodeID"] == node), {})
    labels = me.get("Labels") or {}
    job = payload.job
    fork_server = _context(tuple(node_backends(me)))
    host = host_block(labels.get(PREFIX + "machine") or token(platform.node()), job, str(default_cache_dir()), fork_server)
    payload = payload.here(cache_dir=str(default_cache_dir()))  # this node's cache and registration of the backend
    reason = None if target == MEASURE or job.boundary == ON_DEVICE_BOUNDARY else cannot_prepare(job)
    if reason:
        outcome: Outcome = Skipped(f"{reason} (on {host['machine']})")
    else:
        outcome = run_in_process(fork_server, payload, timeout_s, target)
    return {"outcome": outcome, "node": node, "host": host, "span": (started, time.time())}
