"""When a job's numbers cannot be trusted: the `unstable` rule, in one place.

A job is unstable when (a) its processes do not confirm its p50: no other process's median lies
within AGREE_LIMIT of the median process's (with two processes: their spread exceeds it). On shared
hosts whole processes shift together; one slow process out of three does not move a median of
three, but a median that no second process confirms can; (b) the machine says it was disturbed
(steal time, load, frequency, or a probe more than PROBE_SLOWDOWN_LIMIT slower than its best in the
run; see `harness.machine`); (c) the CI of p50 over all iterations is wider than +-2x the protocol's
target; (d) warm-up never settled; (e) on a GPU, its SM clock or temperature moved during a
process (`harness.gpu`). Tukey outliers are counted and reported but do not by
themselves make a job unstable: latency has a right tail (10-15% beyond the fences is usual here)
that moves neither the median nor its CI.
"""

from __future__ import annotations

import os
import statistics

from harness import gpu, machine
from harness.protocol import ProtocolConfig

AGREE_LIMIT = 0.03
PROBE_SLOWDOWN_LIMIT = 0.25


def _process_figures(pooled: dict) -> list[float]:
    """Each process's headline figure (older records: its all-iteration median)."""
    return pooled.get("process_p50s") or pooled["process_medians"]


def processes_disagree(pooled: dict) -> bool:
    """No second process confirms the job's figure: adaptive repeats give such a job more processes."""
    gap = confirmation_gap(_process_figures(pooled), pooled["p50"])
    return gap is not None and gap > AGREE_LIMIT


def unstable_reasons(processes: list[dict], pooled: dict, cfg: ProtocolConfig, cores: int | None = None) -> list[str]:
    reasons = []
    gap = confirmation_gap(_process_figures(pooled), pooled["p50"])
    if gap is not None and gap > AGREE_LIMIT:
        reasons.append(f"no second process confirms p50: nearest process {gap:.1%} away "
                       f"(limit {AGREE_LIMIT:.0%}; spread {pooled['spread']:.1%}; {len(processes)} processes)")
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


def confirmation_gap(medians: list[float], p50: float) -> float | None:
    """Relative distance from the median process to the nearest other one (None with one process)."""
    if len(medians) < 2 or p50 <= 0:
        return None
    ordered = sorted(medians)
    mid = len(ordered) // 2
    if len(ordered) % 2 == 0:
        return (ordered[mid] - ordered[mid - 1]) / p50
    return min(abs(m - ordered[mid]) for m in ordered[:mid] + ordered[mid + 1:]) / p50


def job_probes(processes: list[dict]) -> dict[str, float]:
    """Median of each probe over a job's processes."""
    keys = {k for p in processes for k in (p.get("probe") or {})}
    return {k: float(statistics.median(p["probe"][k] for p in processes if p.get("probe"))) for k in keys}


def probe_reasons(probes: dict[str, float], best: dict[str, float]) -> list[str]:
    """The machine ran this job slower than at its best moment in the same run."""
    reasons = []
    for key, value in sorted(probes.items()):
        if best.get(key) and value / best[key] - 1 > PROBE_SLOWDOWN_LIMIT:
            reasons.append(f"machine probe ({key.removesuffix('_ns')}) {value / best[key] - 1:.0%} slower than its best in this run")
    return reasons
