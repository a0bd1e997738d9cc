"""Windowed statistics: the number a shared machine repeats.

Measured on this project's 2-vCPU CI host (`benchmarks/machine_states.py`): the whole machine runs at
a few discrete speeds — full speed, and about 1.25x, 1.35x and 1.6x slower — switching every few seconds,
inside one process, on both vCPUs at once, and for every workload alike (window medians of three
models correlate at r = 0.93-0.97; a cache-resident GEMM moves with them). Neither an iteration, a
process nor a whole run is a stable unit there; the full-speed level is. So:

- the timed iterations of every process are grouped in short windows (`WINDOW_S` of wall time, at
  least `MIN_WINDOW_ITERS` iterations), and each window's median is kept;
- the job's **quiet level** is the `QUIET_LEVEL` quantile of all its window medians, over every
  process: a window cannot run faster than the machine's full speed (each is the median of several
  iterations), so a low quantile lands on the full-speed level whenever a tenth of the job's windows
  reached it, wherever in the sweep they fell;
- the headline figure, the **quiet-window p50**, is the median of every window within `QUIET_TOL` of
  the quiet level. Slower windows ran while the machine was slowed and are set aside; their share is
  reported per job. The all-iteration percentiles stay in the record.

The CI is a hierarchical bootstrap: processes, then windows inside each, with the same rule applied to
every replicate; it is wide when the full-speed windows are few or come from one process, and then the
runner gives the job more processes (adaptive repeats). A figure whose quiet windows all come from one
process is marked unconfirmed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WINDOW_S = 0.1
MIN_WINDOW_ITERS = 3
QUIET_LEVEL = 0.10
QUIET_TOL = 0.03
BOOTSTRAP_DRAWS = 1000
STATISTIC = (f"quiet-window p50: median of the {WINDOW_S * 1e3:.0f}-ms window medians within {QUIET_TOL:.0%} of "
             f"their {QUIET_LEVEL:.0%} quantile")


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


def of_windows(windows_ns: Sequence[Sequence[int]]) -> list[dict[str, float]]:
    """The same per-window statistics for windows timed as such (paired measurements), in their order."""
    out, start = [], 0
    for w in windows_ns:
        x = np.asarray(w, dtype=np.float64)
        out.append({"start": start, "n": int(x.size), "p50": float(np.median(x)), "min": float(x.min()),
                    "p90": float(np.percentile(x, 90))})
        start += int(x.size)
    return out


def _arrays(window_medians: Sequence[Sequence[float]]) -> list[np.ndarray]:
    procs = [np.asarray(m, dtype=np.float64) for m in window_medians if len(m)]
    if not procs:
        raise ValueError("no windows to summarize")
    return procs


def quiet_masks(procs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per process, its windows within QUIET_TOL of the QUIET_LEVEL quantile of all windows."""
    level = float(np.quantile(np.concatenate(procs), QUIET_LEVEL)) * (1 + QUIET_TOL)
    return [p <= level for p in procs]


def quiet_p50_rows(rows: np.ndarray) -> np.ndarray:
    """`quiet_p50` of each row of a 2-D array (one bootstrap replicate a row), vectorized."""
    level = np.quantile(rows, QUIET_LEVEL, axis=1, keepdims=True) * (1 + QUIET_TOL)
    return np.nanmedian(np.where(rows <= level, rows, np.nan), axis=1)


def quiet_p50(procs: Sequence[np.ndarray]) -> float:
    return float(np.median(np.concatenate([p[m] for p, m in zip(procs, quiet_masks(procs))])))


def unconfirmed(window_medians: Sequence[Sequence[float]]) -> bool:
    """With two processes or more, every quiet window came from one process."""
    procs = _arrays(window_medians)
    return len(procs) > 1 and sum(bool(m.any()) for m in quiet_masks(procs)) < 2


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
    value = quiet_p50(procs)
    lo, hi = np.percentile(draws_of(procs, draws, seed), [2.5, 97.5])
    kept = sum(int(m.sum()) for m in quiet_masks(procs))
    total = sum(p.size for p in procs)
    return Headline(value, min(float(lo), value), max(float(hi), value), total, total - kept,
                    [quiet_p50([p]) for p in procs])


def draws_of(window_medians: Sequence[Sequence[float]], draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the quiet-window p50: resample processes, then windows inside each
    (vectorized: processes padded with NaN to the longest; NaN sorts last and is never counted)."""
    procs = _arrays(window_medians)
    sizes = np.array([p.size for p in procs])
    width = int(sizes.max())
    padded = np.full((len(procs), width), np.nan)
    for i, p in enumerate(procs):
        padded[i, :p.size] = p
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(procs), (draws, len(procs)))
    n = sizes[picked]  # draws x P
    idx = np.floor(rng.random((draws, len(procs), width)) * n[..., None]).astype(int)
    values = np.where(np.arange(width) < n[..., None], padded[picked[..., None], idx], np.nan)
    flat = np.sort(values.reshape(draws, -1), axis=1)
    levels = _sorted_quantile(flat, n.sum(axis=1), QUIET_LEVEL)
    quiet = np.sort(np.where(flat <= levels[:, None] * (1 + QUIET_TOL), flat, np.nan), axis=1)
    return _sorted_quantile(quiet, np.count_nonzero(~np.isnan(quiet), axis=1), 0.5)


def _sorted_quantile(rows: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """numpy's linear quantile of each row's first `counts` values (rows sorted, NaN last)."""
    pos = q * (counts - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, counts - 1)
    r = np.arange(rows.shape[0])
    return rows[r, lo] + (rows[r, hi] - rows[r, lo]) * (pos - lo)


MEANINGLESS_CI = 0.5  # a CI half-width beyond ±50% of the value says only that the figure does not repeat


def rel_halfwidth(value: float, lo: float | None, hi: float | None) -> float:
    """Half the CI's width relative to the value (inf when there is no CI)."""
    if lo is None or hi is None or not value or math.isnan(lo) or math.isnan(hi):
        return math.inf
    return (hi - lo) / 2 / value
