"""The paired scheduler: ABBA turns, A/A pairs, paired-ratio CI, resident sides and a job timed beside a reference."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from harness import PROJECT_ROOT
from harness.measure import paired, relative
from harness.measure.paired import Local, Resident, SideFailed, alternate, paired_ci, time_window
from harness.measure.protocol import MIN_PAIRS, measure_beside, preset


class Turns:
    """A side that records when it had the turn and returns fixed samples."""

    def __init__(self, name: str, log: list[str], value: int) -> None:
        self.name, self.log, self.value = name, log, value

    def window(self, window_s: float) -> list[int]:
        self.log.append(self.name)
        return [self.value] * 3


def test_abba_order_warm_turns_aa_pairs_and_ratios() -> None:
    log: list[str] = []
    seen: list[int] = []
    alt = alternate((Turns("A", log, 100), Turns("B", log, 150)), pairs=4, window_s=0.01, warm=1,
                    progress=lambda i, total: seen.append(i))
    assert log == ["A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]  # the first turn (warm) is not kept
    assert seen == [-1, 0, 1, 2, 3]
    assert alt.medians == ([100.0] * 4, [150.0] * 4)
    assert np.allclose(alt.ratios(), 1.5)
    assert alt.aa == [(100.0, 100.0), (150.0, 150.0), (100.0, 100.0)]  # kept turns only: B A, A B, B A, A B


def test_more_pairs_while_asked() -> None:
    log: list[str] = []
    alt = alternate((Turns("A", log, 1), Turns("B", log, 1)), pairs=3, window_s=0.01,
                    more=lambda a: len(a.samples[0]) < 7)
    assert len(alt.samples[0]) == 7 == len(alt.samples[1])


def test_paired_ci_brackets_the_median_and_narrows_with_pairs() -> None:
    rng = np.random.default_rng(0)
    few, many = rng.normal(1.1, 0.02, 8), rng.normal(1.1, 0.02, 200)
    for ratios in (few, many):
        med, lo, hi = paired_ci(ratios)
        assert lo <= med <= hi and med == pytest.approx(np.median(ratios))
    assert np.subtract(*paired_ci(many)[2:0:-1]) < np.subtract(*paired_ci(few)[2:0:-1])


def test_a_window_lasts_its_time_and_has_at_least_three_iterations(monkeypatch) -> None:
    calls = []
    samples = time_window(lambda: calls.append(1) or 5, 0.0)
    assert samples == [5, 5, 5]  # a window never has fewer than three iterations
    clock = iter(np.arange(0.0, 100.0, 0.01))  # every reading of the clock is 10 ms later than the one before
    monkeypatch.setattr(paired.time, "perf_counter", lambda: next(clock))
    assert len(time_window(lambda: 7, 0.1)) == 10  # the loop reads the clock once an iteration: 100 ms of it


def test_serve_speaks_json_lines_and_reports_a_refusal() -> None:
    replies = io.StringIO()
    commands = io.StringIO('{"x": 1}\n{"window_s": 0.0}\n{"quit": true}\n')
    paired.serve(commands, replies, lambda payload: (lambda: 7, {"opened": payload["x"]}), finish=lambda: {"end": 1})
    lines = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert lines == [{"opened": 1}, {"samples_ns": [7, 7, 7]}, {"end": 1}]
    replies = io.StringIO()
    paired.serve(io.StringIO('{}\n{"window_s": 0.1}\n'), replies, lambda payload: (None, {"skipped": "no runtime"}))
    assert [json.loads(line) for line in replies.getvalue().splitlines()] == [{"skipped": "no runtime"}]


def test_a_resident_side_keeps_its_own_pythonpath_after_the_checkout(tmp_path: Path) -> None:
    """`--candidate-env PYTHONPATH=...` must reach that side (a plugin meant for one side), after the checkout."""
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    side = Resident("candidate", "tests.fake_side", 30, env={"PYTHONPATH": str(plugin_dir), "FAKE_SIDE_MARKER": "cand"})
    try:
        ready = side.open({"delay_s": 0.001})
        assert ready["marker"] == "cand"
        path = [p for p in ready["path"] if p]
        assert str(plugin_dir) in path and str(PROJECT_ROOT) in path
        assert path.index(str(PROJECT_ROOT)) < path.index(str(plugin_dir))
        assert len(side.window(0.01)) >= 3
    finally:
        assert side.close() == {"bye": True}


def test_a_resident_side_that_cannot_start_its_module_fails_by_name() -> None:
    side = Resident("baseline", "no_such_module_here", 30)
    with pytest.raises(SideFailed, match="baseline process died"):
        side.open({})
    side.kill()


def test_a_job_timed_beside_a_reference_pairs_every_window() -> None:
    # instant steps: a 1-ms window holds thousands of iterations, well under the protocol's max_iters
    cfg = preset("default", warmup_s=0.0, warmup_max_s=0.05, min_s=0.05, max_s=0.1, window_s=0.001)
    calls = {"job": 0, "reference": 0}

    def fixed(name: str, ns: int):
        def step() -> int:
            calls[name] += 1
            return ns
        return step

    result, alt = measure_beside(fixed("job", 2_000_000), fixed("reference", 1_000_000), cfg)
    job, ref = alt.medians
    assert len(job) == len(ref) >= MIN_PAIRS
    assert len(result.samples_ns) == sum(len(w) for w in alt.samples[0])
    assert result.stop_reason in ("ci", "max_s")
    assert calls["job"] > len(result.samples_ns) + len(result.warmup_ns)  # the re-warm iterations are not kept
    process = {"windows": [{"p50": m} for m in job], "reference": {"name": "fixed", "torch": "x", "window_p50_ns": ref}}
    figure = relative.figure([process, process])
    assert figure["pairs"] == 2 * len(job) and figure["reference"] == {"name": "fixed", "torch": "x"}
    assert figure["value"] == figure["ci_low"] == figure["ci_high"] == 2.0
    assert figure["reference_p50_ms"] == 1.0


def test_relative_figure_is_the_median_paired_ratio_and_needs_pairs() -> None:
    proc = {"windows": [{"p50": v} for v in (10, 20, 30, 40)], "reference": {"name": "r", "window_p50_ns": [5, 10, 10, 20]}}
    figure = relative.figure([proc])
    assert figure["value"] == pytest.approx(2.0) and figure["pairs"] == 4
    assert figure["reference_p50_ms"] == pytest.approx(5e-6, rel=0.01)  # quiet level of the reference windows
    assert relative.figure([{"windows": [{"p50": 1}] * 4}]) is None  # no reference
    short = {"windows": [{"p50": 1}] * 2, "reference": {"name": "r", "window_p50_ns": [1, 1]}}
    assert relative.figure([short]) is None  # too few pairs for a CI


def test_local_side_times_its_step() -> None:
    assert Local(lambda: 3).window(0.0) == [3, 3, 3]


def test_a_local_side_can_rewarm_untimed_at_each_turn() -> None:
    """Beside a reference, the first iteration of a turn runs on the other workload's caches: untimed."""
    calls: list[int] = []

    def step() -> int:
        calls.append(1)
        return 100 if len(calls) == 1 else 10  # the first iteration of the turn is the slow one

    assert Local(step, rewarm_s=0.0).window(0.0)[0] == 100
    calls.clear()
    samples = Local(step, rewarm_s=1e-6).window(0.0)
    assert samples == [10, 10, 10] and len(calls) >= 4
