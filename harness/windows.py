"""Windowed statistics: the number a shared machine repeats.

On a small shared VM neither an iteration, a process nor a whole run is a stable unit: the second
vCPU comes and goes within a second, inside one process (measured here: ONNX Runtime MobileOne-S0
at 2 threads runs 3.7-4.0 ms or 5.6-6.9 ms and switches between them within a process). So the timed
iterations of every process are grouped in short windows (`WINDOW_S` of wall time, at least
`MIN_WINDOW_ITERS` iterations), and the headline figure is the **quiet-window p50**: the median of
the window medians that lie within `QUIET_TOL` of the job's quiet level (the `QUIET_LEVEL` quantile of
all its window medians, over every process). Windows slower than that were disturbed (a neighbour, a
vCPU taken away) and are set aside; their share is reported per job. A disturbed minority of windows
cannot move the figure; a disturbed majority moves the quiet level itself, and then the processes
disagree and the job is marked. `benchmarks/window_statistics.py` chose the level and tolerance from
two back-to-back sweeps on this project's 2-vCPU CI host (the figures are in the README).

The CI is a hierarchical bootstrap: resample processes, then windows inside each, and apply the same
rule to each replicate, so it widens when processes or windows disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WINDOW_S = 0.1
MIN_WINDOW_ITERS = 5
QUIET_LEVEL = 0.25
QUIET_TOL = 0.03
BOOTSTRAP_DRAWS = 1000
STATISTIC = (f"quiet-window p50: median of {WINDOW_S * 1e3:.0f}-ms window medians within {QUIET_TOL:.0%} of their "
             f"{QUIET_LEVEL:.0%} quantile")


def split(samples_ns: Sequence[int] | np.ndarray, window_s: float = WINDOW_S,
          min_iters: int = MIN_WINDOW_ITERS) -> list[tuple[int, int]]:
    """(start, count) of consecutive windows of at least `window_s` of summed sample time and
    `min_iters` iterations; a short tail joins the last window."""
    x = np.asarray(samples_ns, dtype=np.float64)
    bounds: list[tuple[int, int]] = []
    start, acc = 0, 0.0
    for i, t in enumerate(x):
        acc += t
        if acc >= window_s * 1e9 and i + 1 - start >= min_iters:
            bounds.append((start, i + 1 - start))
            start, acc = i + 1, 0.0
    if start < x.size:
        if bounds:
            s, _ = bounds.pop()
            bounds.append((s, x.size - s))
        else:
            bounds.append((0, int(x.size)))
    return bounds


def summaries(samples_ns: Sequence[int], window_s: float = WINDOW_S,
              min_iters: int = MIN_WINDOW_ITERS) -> list[dict[str, float]]:
    """Per-window statistics kept in the record beside the raw samples."""
    x = np.asarray(samples_ns, dtype=np.float64)
    out = []
    for start, n in split(x, window_s, min_iters):
        w = x[start:start + n]
        out.append({"start": int(start), "n": int(n), "p50": float(np.median(w)), "min": float(w.min()),
                    "p90": float(np.percentile(w, 90))})
    return out


def quiet_mask(medians: np.ndarray, level: float = QUIET_LEVEL, tol: float = QUIET_TOL) -> np.ndarray:
    """Windows no slower than `tol` above the `level` quantile of all window medians."""
    return medians <= np.quantile(medians, level) * (1 + tol)


def quiet_p50(medians: np.ndarray, level: float = QUIET_LEVEL, tol: float = QUIET_TOL) -> float:
    return float(np.median(medians[quiet_mask(medians, level, tol)]))


@dataclass(frozen=True)
class Headline:
    """The figure a leaderboard shows, its 95% CI, and what it set aside."""

    p50: float
    ci_low: float
    ci_high: float
    windows: int
    set_aside: int
    process_p50s: list[float]  # the same rule applied to each process alone

    @property
    def set_aside_share(self) -> float:
        return self.set_aside / self.windows if self.windows else 0.0


def headline(window_medians: Sequence[Sequence[float]], draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> Headline:
    """The quiet-window p50 over processes (each a list of window medians), with its bootstrap CI."""
    procs = _arrays(window_medians)
    every = np.concatenate(procs)
    value = quiet_p50(every)
    lo, hi = np.percentile(draws_of(procs, draws, seed), [2.5, 97.5])
    return Headline(value, min(float(lo), value), max(float(hi), value), int(every.size),
                    int(every.size - quiet_mask(every).sum()), [quiet_p50(p) for p in procs])


def _arrays(window_medians: Sequence[Sequence[float]]) -> list[np.ndarray]:
    procs = [np.asarray(m, dtype=np.float64) for m in window_medians if len(m)]
    if not procs:
        raise ValueError("no windows to summarize")
    return procs


def draws_of(window_medians: Sequence[Sequence[float]], draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the quiet-window p50: resample processes, then windows inside each
    (vectorized: processes padded with NaN to the longest, positions past a process's size dropped)."""
    procs = _arrays(window_medians)
    sizes = np.array([p.size for p in procs])
    padded = np.full((len(procs), sizes.max()), np.nan)
    for i, p in enumerate(procs):
        padded[i, :p.size] = p
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(procs), (draws, len(procs)))
    n = sizes[picked][..., None]  # draws x P x 1
    cols = np.arange(sizes.max())
    idx = np.floor(rng.random((draws, len(procs), sizes.max())) * n).astype(int)
    values = np.sort(np.where(cols < n, padded[picked[..., None], idx], np.nan).reshape(draws, -1), axis=1)
    level = _sorted_quantile(values, np.count_nonzero(~np.isnan(values), axis=1), QUIET_LEVEL)
    quiet = np.sort(np.where(values <= level[:, None] * (1 + QUIET_TOL), values, np.nan), axis=1)
    return _sorted_quantile(quiet, np.count_nonzero(~np.isnan(quiet), axis=1), 0.5)


def _sorted_quantile(rows: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """numpy's linear quantile of each row's first `counts` values (rows sorted, NaN last)."""
    pos = q * (counts - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, counts - 1)
    r = np.arange(rows.shape[0])
    return rows[r, lo] + (rows[r, hi] - rows[r, lo]) * (pos - lo)


def rel_halfwidth(value: float, lo: float | None, hi: float | None) -> float:
    """Half the CI's width relative to the value (inf when there is no CI)."""
    if lo is None or hi is None or not value or math.isnan(lo) or math.isnan(hi):
        return math.inf
    return (hi - lo) / 2 / value
