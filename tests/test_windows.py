"""Windowed statistics: windows by wall time, the quiet-window p50 and its bootstrap CI."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure import windows


def test_windows_span_the_window_time_and_a_minimum_of_iterations() -> None:
    samples = [40_000_000] * 7  # 40 ms each: 0.1 s needs 3, but a window needs 5 iterations
    assert windows.split(samples, 0.1, 5) == [(0, 7)]  # the short tail joins the last window
    assert windows.split([30_000_000] * 9, 0.1, 2) == [(0, 4), (4, 5)]
    assert windows.split([1_000_000] * 250, 0.1, 5) == [(0, 100), (100, 150)]
    stats = windows.summaries([1_000_000] * 100 + [2_000_000] * 100, 0.1, 5)
    assert [w["p50"] for w in stats] == [1e6, 2e6, 2e6] and [w["start"] for w in stats] == [0, 100, 150]


def test_a_disturbed_minority_of_windows_cannot_move_the_headline() -> None:
    rng = np.random.default_rng(0)
    quiet = [rng.normal(4e6, 2e4, 10) for _ in range(3)]
    disturbed = [np.concatenate([q, rng.normal(6e6, 3e5, 4)]) for q in quiet]  # 4 of 14 windows per process at +50%
    clean, noisy = windows.headline(quiet), windows.headline(disturbed)
    assert noisy.p50 == pytest.approx(clean.p50, rel=0.005)
    assert noisy.set_aside == 12 and noisy.set_aside_share == pytest.approx(12 / 42)
    assert clean.set_aside == 0 and noisy.ci_high / noisy.ci_low - 1 < 0.02
    assert float(np.mean(np.concatenate(disturbed))) > 1.1 * noisy.p50  # the mean moved


def test_disagreeing_processes_widen_the_ci() -> None:
    rng = np.random.default_rng(1)
    agree = windows.headline([rng.normal(4e6, 2e4, 10) for _ in range(3)])
    apart = windows.headline([rng.normal(m, 2e4, 10) for m in (4e6, 4.6e6, 5.2e6)])
    assert apart.ci_high - apart.ci_low > 5 * (agree.ci_high - agree.ci_low)
    assert apart.process_p50s == sorted(apart.process_p50s)


def test_headline_ci_covers_the_true_level() -> None:
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(40):
        h = windows.headline([rng.normal(4e6 * rng.normal(1, 0.003), 2e4, 8) for _ in range(3)], draws=400, seed=1)
        # the quiet level of N(4e6, 2e4) windows: the median of those within 3% of the 25% quantile
        covered += h.ci_low <= 4e6 <= h.ci_high or abs(h.p50 / 4e6 - 1) < 0.005
    assert covered >= 34
    with pytest.raises(ValueError):
        windows.headline([[]])
    assert windows.rel_halfwidth(10.0, 9.0, 11.0) == pytest.approx(0.1) and windows.rel_halfwidth(1.0, None, 2.0) == float("inf")
