"""A job's relative figure: its time over the pinned reference's, window pair by window pair.

Every timed process of a sweep job takes turns with a pinned reference workload
(`harness.measure.reference`, `protocol.measure_beside`); its record keeps, per process, the job's
window medians (`windows`) and the reference's (`reference.window_p50_ns`) in pair order. The relative
figure is the median over all pairs of (job window / reference window), with a bootstrap CI over pairs;
the reference's own figure is the same quiet-window rule the milliseconds use, applied to its windows.
History and the nightly track the relative figure; it is comparable only between records whose
reference identity (name, PyTorch release) is the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.measure import windows
from harness.measure.paired import paired_ci

STATISTIC = "median over window pairs of job / pinned reference (ABBA, in one process)"


def pairs_of(processes: list[dict[str, Any]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(job/reference ratio of every pair, the reference's window medians per process) of the processes
    that were timed beside a reference."""
    ratios, refs = [], []
    for p in processes:
        ref = (p.get("reference") or {}).get("window_p50_ns")
        if not ref:
            continue
        job = np.array([w["p50"] for w in p["windows"]][:len(ref)])
        ratios.append(job / np.asarray(ref[:job.size]))
        refs.append(np.asarray(ref, dtype=np.float64))
    return (np.concatenate(ratios) if ratios else np.array([])), refs


def figure(processes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record's `relative` block, or None when no process was timed beside a reference."""
    ratios, refs = pairs_of(processes)
    if ratios.size < 3:
        return None
    value, lo, hi = paired_ci(ratios)
    identity = {k: v for k, v in processes[0]["reference"].items() if k != "window_p50_ns"}
    return {"value": value, "ci_low": lo, "ci_high": hi, "pairs": int(ratios.size), "reference": identity,
            "reference_p50_ms": windows.quiet_p50(refs) / 1e6, "statistic": STATISTIC}

