"""A job's relative figure: its time over the pinned reference's, both timed window by window in one process.

Every timed process of a sweep job takes turns with a pinned reference workload
(`harness.measure.reference`, `protocol.measure_beside`); its record keeps, per process, the job's
window medians (`windows`) and the reference's (`reference.window_p50_ns`) in pair order. The relative
figure is the job's quiet-window p50 (the leaderboard's rule, `harness.measure.windows`) over the
reference's, both over every process's windows, so it divides the record's headline milliseconds by the
reference's own; its 95% CI resamples window pairs, keeping each job window with the reference window
beside it. Measured against the median of paired ratios (`benchmarks/reference_choice.py`, six trials in
43 minutes): with the chosen reference the ratio of quiet levels held 76% of jobs within 3% between trials
20+ minutes apart, the median paired ratio 67%; a slow stretch that catches only one window of a pair moves
a paired ratio, not a level. (Over one morning's default sweeps the two came out the other way, 243 against
256 of 360 job pairs: docs/protocol.md, "Relative figures".)
History and the nightly track the relative figure; it is comparable only between records whose
reference identity (name and the releases of the libraries that run it) is the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.measure import windows

STATISTIC = "job quiet-window p50 / pinned reference's, over the same processes' alternating windows"


def pairs_of(processes: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(job window medians, reference window medians) of every pair, over the processes that were timed
    beside a reference."""
    job, ref = [], []
    for p in processes:
        beside = (p.get("reference") or {}).get("window_p50_ns")
        if not beside:
            continue
        n = min(len(beside), len(p["windows"]))
        job += [w["p50"] for w in p["windows"][:n]]
        ref += list(beside[:n])
    return np.asarray(job, dtype=np.float64), np.asarray(ref, dtype=np.float64)


def figure(processes: list[dict[str, Any]], seed: int = 0) -> dict[str, Any] | None:
    """The record's `relative` block, or None when fewer than 3 windows were timed beside a reference."""
    job, ref = pairs_of(processes)
    if job.size < 3:
        return None
    value = windows.quiet_p50([job]) / windows.quiet_p50([ref])
    idx = np.random.default_rng(seed).integers(0, job.size, (windows.BOOTSTRAP_DRAWS, job.size))
    lo, hi = np.percentile(windows.quiet_p50_rows(job[idx]) / windows.quiet_p50_rows(ref[idx]), [2.5, 97.5])
    identity = {k: v for k, v in next(p for p in processes if p.get("reference"))["reference"].items()
                if k != "window_p50_ns"}
    return {"value": float(value), "ci_low": min(float(lo), value), "ci_high": max(float(hi), value),
            "pairs": int(job.size), "reference": identity, "reference_p50_ms": windows.quiet_p50([ref]) / 1e6,
            "statistic": STATISTIC}
