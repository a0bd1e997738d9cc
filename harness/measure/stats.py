"""Summary statistics of latency samples, and the pooling of per-process results.

The confidence interval of the median is distribution-free (order statistics; scipy's
`quantile_test`), because latency distributions are skewed and multi-modal, not normal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from harness.measure import windows

CONFIDENCE = 0.95
TUKEY_K = 1.5
# The fewest samples with a distribution-free 95% CI of the median: with n samples the interval
# [min, max] covers the median with probability 1 - 2 * 0.5**n, which first exceeds 95% at n = 6.
MIN_CI_SAMPLES = 6


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free CI of the median; (nan, nan) when there are too few samples to have one
    (fewer than MIN_CI_SAMPLES at 95%)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 2 or (confidence == CONFIDENCE and x.size < MIN_CI_SAMPLES):
        return math.nan, math.nan
    from scipy import stats as sps  # here, not at the top: it costs every `bench` command half a second to import

    ci = sps.quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def rel_ci_halfwidth(samples: Sequence[float] | np.ndarray) -> float:
    """Half the width of the median's CI relative to the median (inf when undefined)."""
    lo, hi = median_ci(samples)
    med = float(np.median(samples))
    if math.isnan(lo) or math.isnan(hi) or med <= 0:
        return math.inf
    return (hi - lo) / 2 / med


@dataclass(frozen=True)
class Summary:
    """Statistics of one set of samples, in nanoseconds per inference."""

    n: int
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    iqr: float
    ci_low: float
    ci_high: float
    outliers: int  # beyond Tukey's fences (1.5 IQR outside the quartiles)

    def as_dict(self) -> dict[str, float]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def summarize(samples_ns: Sequence[int] | np.ndarray) -> Summary:
    x = np.asarray(samples_ns, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    q1, p50, q3, p90, p95, p99 = np.percentile(x, [25, 50, 75, 90, 95, 99])
    iqr = q3 - q1
    lo, hi = median_ci(x)
    outliers = int(np.count_nonzero((x < q1 - TUKEY_K * iqr) | (x > q3 + TUKEY_K * iqr)))
    return Summary(int(x.size), float(x.min()), float(p50), float(p90), float(p95), float(p99), float(x.mean()),
                   float(x.std(ddof=1)) if x.size > 1 else 0.0, float(iqr), lo, hi, outliers)


@dataclass(frozen=True)
class Pooled:
    """A job's figures over its processes and their windows.

    p50 is the headline: the quiet-window p50 (`harness.measure.windows`), with a hierarchical bootstrap CI
    over processes and then windows; `p50_all` is the plain median of every iteration, and the tail
    percentiles come from all iterations pooled. `process_p50s` applies the headline rule to each
    process alone; `spread` is their (max - min) / p50. `process_medians` are all-iteration medians.
    """

    processes: int
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    mean: float
    std: float
    iqr: float
    ci_low: float
    ci_high: float
    n: int
    outliers: int
    process_medians: list[float]
    spread: float
    throughput: float  # images per second at p50
    p50_all: float
    process_p50s: list[float]
    windows: int
    windows_set_aside: int
    set_aside_share: float
    statistic: str = windows.STATISTIC

    def as_dict(self) -> dict[str, object]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def pool(per_process_samples: Sequence[Sequence[int]], batch: int, window_s: float = windows.WINDOW_S,
         window_medians: Sequence[Sequence[float]] | None = None) -> Pooled:
    """`window_medians`: the processes' windows as they were timed (paired measurements alternate whole
    windows); by default each process's samples are split into windows of `window_s`."""
    if not per_process_samples:
        raise ValueError("no processes to pool")
    arrays = [np.asarray(s, dtype=np.float64) for s in per_process_samples]
    medians = [float(np.median(a)) for a in arrays]
    everything = summarize(np.concatenate(arrays))
    if window_medians is None:
        window_medians = [[w["p50"] for w in windows.summaries(a, window_s)] for a in arrays]
    head = windows.headline(window_medians)
    p50 = head.p50
    spread = (max(head.process_p50s) - min(head.process_p50s)) / p50 if p50 > 0 else 0.0
    return Pooled(
        processes=len(medians), p50=p50, p90=everything.p90, p95=everything.p95, p99=everything.p99,
        min=everything.min, mean=everything.mean, std=everything.std, iqr=everything.iqr,
        ci_low=head.ci_low, ci_high=head.ci_high, n=everything.n, outliers=everything.outliers,
        process_medians=medians, spread=spread, throughput=batch * 1e9 / p50 if p50 > 0 else 0.0,
        p50_all=everything.p50, process_p50s=head.process_p50s, windows=head.windows,
        windows_set_aside=head.set_aside, set_aside_share=head.set_aside_share,
    )


def pool_processes(processes: Sequence[dict], batch: int, window_s: float = windows.WINDOW_S) -> Pooled:
    """`pool` over records' processes: a process that took turns with another workload (a pinned
    reference, the other lockstep side) keeps the windows it timed; the others are split by `window_s`."""
    paired = all(p.get("windows") and (p.get("reference") or p.get("lockstep")) for p in processes)
    return pool([p["samples_ns"] for p in processes], batch, window_s,
                [[w["p50"] for w in p["windows"]] for p in processes] if paired else None)
