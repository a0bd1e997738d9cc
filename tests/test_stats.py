"""Statistics against known distributions and scipy; the stop rule on a simulated clock."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from harness.measure.protocol import ProtocolConfig, measure
from harness.measure.stats import median_ci, pool, rel_ci_halfwidth, summarize


def test_summary_matches_numpy() -> None:
    x = np.random.default_rng(0).lognormal(1.0, 0.2, 5000)
    s = summarize(x)
    assert s.n == 5000 and s.min == x.min()
    for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        assert getattr(s, name) == pytest.approx(np.percentile(x, q))
    assert s.mean == pytest.approx(x.mean()) and s.std == pytest.approx(x.std(ddof=1))
    assert s.iqr == pytest.approx(sps.iqr(x))


def test_outliers_are_counted_with_tukey_fences() -> None:
    x = np.concatenate([np.full(100, 10.0) + np.linspace(0, 1, 100), [100.0, 200.0, -50.0]])
    assert summarize(x).outliers == 3


def test_median_ci_is_order_statistics_with_binomial_coverage() -> None:
    x = np.random.default_rng(1).exponential(1.0, 101)
    lo, hi = median_ci(x)
    srt = np.sort(x)
    i, j = int(np.searchsorted(srt, lo)), int(np.searchsorted(srt, hi))
    assert srt[i] == lo and srt[j] == hi  # bounds are sample values
    coverage = sps.binom.cdf(j, 101, 0.5) - sps.binom.cdf(i, 101, 0.5)  # P(X_(i+1) <= median <= X_(j+1))
    assert coverage >= 0.95 and i < 50 < j


@pytest.mark.parametrize("dist", ["lognormal", "bimodal"])
def test_median_ci_covers_the_true_median(dist: str) -> None:
    rng = np.random.default_rng(2)
    if dist == "lognormal":
        true, draw = 1.0, lambda n: rng.lognormal(0.0, 0.3, n)
    else:  # two modes, like a process that sometimes loses a core; median inside the larger mode
        draw = lambda n: np.where(rng.random(n) < 0.7, rng.normal(3.0, 0.1, n), rng.normal(5.0, 0.1, n))  # noqa: E731
        true = float(np.median(draw(2_000_000)))
    hits = sum(lo <= true <= hi for lo, hi in (median_ci(draw(200)) for _ in range(400)))
    assert 0.93 <= hits / 400 <= 0.995


def test_ci_is_undefined_for_too_few_samples() -> None:
    assert np.isnan(median_ci([1.0])[0])
    assert rel_ci_halfwidth([1.0]) == float("inf")


def test_pool_keeps_all_iteration_figures_beside_the_headline() -> None:
    procs = [[10, 10, 11], [20, 20, 21], [12, 12, 13]]  # one window each (far shorter than 100 ms)
    p = pool(procs, batch=4)
    assert p.process_medians == [10.0, 20.0, 12.0] and p.p50_all == 12.0 and p.n == 9
    assert p.p50 == 10.0 and p.windows == 3 and p.windows_set_aside == 2  # 20 and 12 are >3% above the quiet level
    assert p.spread == pytest.approx((20 - 10) / 10)
    assert p.throughput == pytest.approx(4 * 1e9 / 10)
    assert p.ci_low <= p.p50 <= p.ci_high and p.ci_high - p.ci_low >= 2  # processes disagree: a wide CI


class FakeClock:
    """A clock that only moves when the simulated inference runs."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0, iter(durations), 0

    def __call__(self) -> int:
        return self.now

    def run(self) -> None:
        self.calls += 1
        self.now += int(next(self.durations))


CFG = ProtocolConfig(warmup_iters=5, warmup_s=0.0, warmup_max_s=10.0, warmup_window=5, warmup_tol=0.05, min_iters=20,
                     min_s=0.0, max_s=1.0, target_rel_ci=0.01)


def test_steady_timings_stop_on_the_ci_target() -> None:
    rng = np.random.default_rng(3)
    clock = FakeClock(1_000_000 + rng.normal(0, 5_000, 100_000))
    m = measure(clock.run, CFG, clock=clock)
    assert m.stop_reason == "ci" and m.warmup_converged
    assert len(m.samples_ns) + len(m.warmup_ns) == clock.calls  # every iteration kept
    assert rel_ci_halfwidth(m.samples_ns) <= 0.01 and len(m.samples_ns) < 200


def test_noisy_timings_stop_at_max_s() -> None:
    rng = np.random.default_rng(4)
    clock = FakeClock(rng.choice([1e6, 3e6], 100_000) * rng.uniform(0.5, 1.5, 100_000))
    m = measure(clock.run, CFG, clock=clock)
    assert m.stop_reason == "max_s"
    assert 1.0 <= sum(m.samples_ns) / 1e9 < 1.1


def test_warmup_waits_for_a_stable_window() -> None:
    slow_start = [5e6 * 0.8**i + 1e6 for i in range(40)]  # caches and allocators warming up
    clock = FakeClock(slow_start + [1e6] * 100_000)
    m = measure(clock.run, CFG, clock=clock)
    assert m.warmup_converged and len(m.warmup_ns) >= 15
    last = np.array(m.warmup_ns[-5:], dtype=float)
    assert np.median(last) < 1.05e6 * 1.05


def test_min_iterations_and_seconds_are_honoured() -> None:
    cfg = ProtocolConfig(warmup_iters=1, warmup_s=0.0, warmup_window=1, min_iters=50, min_s=0.2, max_s=5.0)
    clock = FakeClock([1e6] * 100_000)
    m = measure(clock.run, cfg, clock=clock)
    assert len(m.samples_ns) >= 200  # 0.2 s of 1 ms iterations, though the CI was met after 50
