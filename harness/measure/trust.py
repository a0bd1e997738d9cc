"""When a job's numbers cannot be trusted: the `unstable` rule, in one place.

A job is unstable when (a) the speed its figure stands on was reached by one process only: every
quiet window came from one process (see `harness.measure.windows`); (b) the machine says it was disturbed
(steal time, load, a busy neighbour, frequency, or a probe more than PROBE_SLOWDOWN_LIMIT slower than
its best in the run; see `harness.host.machine`); (c) the CI of the figure is wider than +-2x the protocol's
target even after the adaptive repeats; (d) warm-up never settled; (e) on a GPU, its SM clock or
temperature moved during a process (`harness.host.gpu`). Tukey outliers are counted and reported but do not by
themselves make a job unstable: latency has a right tail (10-15% beyond the fences is usual here)
that moves neither the median nor its CI.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

from harness.host import gpu, machine
from harness.measure import windows
from harness.measure.protocol import ProtocolConfig
from harness.store.record import Process, Record

PROBE_SLOWDOWN_LIMIT = 0.25


def unstable_reasons(processes: list[dict], pooled: dict, cfg: ProtocolConfig, cores: int | None = None) -> list[str]:
    reasons = []
    medians = [[w["p50"] for w in p.get("windows") or windows.summaries(p["samples_ns"], cfg.window_s)] for p in processes]
    if windows.unconfirmed(medians):
        reasons.append(f"full speed was reached in one process only: every quiet window came from it "
                       f"({len(processes)} processes; spread {pooled['spread']:.1%})")
    reasons += machine.disturbances(processes, cores or os.cpu_count() or 1)
    if pooled.get("ci_high") is None or pooled.get("ci_low") is None:
        reasons.append("too few iterations for a confidence interval of p50")
    else:
        half = (pooled["ci_high"] - pooled["ci_low"]) / 2 / pooled["p50"]
        if half > 2 * cfg.target_rel_ci:
            reasons.append(f"CI of p50 ±{half:.1%}, wider than twice the ±{cfg.target_rel_ci:.0%} target")
    for i, p in enumerate(processes):
        if not p.get("warmup_converged", True):
            reasons.append(f"process {i}: warm-up did not settle within {cfg.warmup_max_s:g} s")
        if p.get("gpu"):
            reasons += [f"process {i}: {r}" for r in gpu.changes(p["gpu"].get("before", {}), p["gpu"].get("after", {}))]
    return reasons


def job_probes(processes: Sequence[Process]) -> dict[str, float]:
    """Median of each probe over a job's processes."""
    keys = {k for p in processes for k in p.probe}
    return {k: float(statistics.median(p.probe[k] for p in processes if p.probe)) for k in keys}


def probe_reasons(probes: dict[str, float], best: dict[str, float]) -> list[str]:
    """The machine ran this job slower than at its best moment in the same run."""
    reasons = []
    for key, value in sorted(probes.items()):
        if best.get(key) and value / best[key] - 1 > PROBE_SLOWDOWN_LIMIT:
            reasons.append(f"machine probe ({key.removesuffix('_ns')}) {value / best[key] - 1:.0%} slower than its best in this run")
    return reasons


def machine_busy(rec: Record) -> list[str]:
    """A record's own signs that its machine was busy while it was timed (steal, other processes, load,
    frequency, a probe slower than its best in the run): what it says of the machine, not of its figure, so a
    comparison can refuse to call a change that the machine may have made."""
    cores = int((rec.host.get("cpu") or {}).get("logical_cores") or os.cpu_count() or 1)
    reasons = machine.disturbances([{"machine": dict(p.machine)} for p in rec.processes], cores)
    return reasons + [r for r in rec.unstable_reasons if r.startswith("machine probe")]
