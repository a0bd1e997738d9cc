"""When a job's numbers cannot be trusted: the `unstable` rule, in one place.

A job is unstable when (a) its processes disagree: per-process medians spread by more than
SPREAD_LIMIT of the pooled p50 — on shared hosts whole processes shift together, so this is the
signal that matters most; (b) the machine says it was disturbed (steal time, load, frequency, or the
fixed probe slower than the run's best; see `harness.machine`); (c) the stop rule never reached its
CI target; (d) warm-up never settled. Tukey outliers are counted and reported but do not by
themselves make a job unstable: latency has a right tail (10-15% beyond the fences is usual here)
that moves neither the median nor its CI.
"""

from __future__ import annotations

import os

from harness import machine
from harness.protocol import ProtocolConfig

SPREAD_LIMIT = 0.03
PROBE_SLOWDOWN_LIMIT = 0.10


def unstable_reasons(processes: list[dict], pooled: dict, cfg: ProtocolConfig, cores: int | None = None) -> list[str]:
    reasons = []
    if pooled["processes"] > 1 and pooled["spread"] > SPREAD_LIMIT:
        reasons.append(f"per-process medians spread {pooled['spread']:.1%} (limit {SPREAD_LIMIT:.0%})")
    reasons += machine.disturbances(processes, cores or os.cpu_count() or 1)
    for i, p in enumerate(processes):
        s = p["summary"]
        half = (s["ci_high"] - s["ci_low"]) / 2 / s["p50"] if s.get("ci_high") is not None and s["p50"] else None
        if p.get("stop_reason") == "max_s" and (half is None or half > 2 * cfg.target_rel_ci):
            reasons.append(f"process {i}: CI of the median still ±{half:.1%} at max_s" if half is not None
                           else f"process {i}: too few iterations for a CI")
        if not p.get("warmup_converged", True):
            reasons.append(f"process {i}: warm-up did not settle within {cfg.warmup_max_s:g} s")
    return reasons


def probe_reasons(probe_ns: float | None, best_probe_ns: float | None) -> list[str]:
    """The machine ran this job slower than at its best moment in the same run."""
    if not probe_ns or not best_probe_ns or probe_ns / best_probe_ns - 1 <= PROBE_SLOWDOWN_LIMIT:
        return []
    return [f"machine probe {probe_ns / best_probe_ns - 1:.0%} slower than its best in this run"]
