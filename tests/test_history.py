"""History: change points on planted steps, series from the index, plots, and too-short histories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.store import runs as store
from harness.track.history import change_points, lines, load_series, plot
from tests.synthetic import process_samples, record, with_relative


def _noisy(levels: list[tuple[int, float]], sd: float = 0.01, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [level * rng.normal(1, sd) for n, level in levels for _ in range(n)]


def test_a_planted_step_is_found_where_it_is() -> None:
    found = [change_points(_noisy([(15, 3.0), (15, 3.3)], seed=seed)) for seed in range(20)]
    assert all(15 in f for f in found)
    assert sum(f != [15] for f in found) <= 2  # an occasional extra step in 20 noisy series


def test_a_step_near_the_newest_run_blames_the_right_run() -> None:
    # PELT alone cannot end a segment within min_size points of the end: it put this step one run early
    found = [change_points(_noisy([(6, 3.0), (2, 3.36)], seed=seed)) for seed in range(20)]
    assert sum(f == [6] for f in found) >= 18, found


def test_two_steps_and_no_step() -> None:
    assert change_points(_noisy([(10, 3.0), (10, 3.45), (10, 3.0)], seed=1)) == [10, 20]
    assert sum(bool(change_points(_noisy([(30, 3.0)], seed=s))) for s in range(20)) <= 1
    assert change_points([3.0, 3.0, 3.3, 3.3]) == []  # too short to call a step


def _index(tmp_path: Path, p50s: list[float]) -> Path:
    db = tmp_path / "index.sqlite"
    rng = np.random.default_rng(0)
    for i, p50 in enumerate(p50s):
        rec = record(process_samples(rng, p50 * 1e6, process_sd=0.0, iter_sd=0.001), run_id=f"run{i:02d}",
                     created=f"2026-11-{i + 1:02d}T00:00:00+00:00", commit=f"c{i:02d}")
        store.index_record(db, rec, tmp_path / f"{i}.json")
    return db


def test_series_from_the_index_and_plots(tmp_path: Path) -> None:
    db = _index(tmp_path, [3.0] * 8 + [3.6] * 8)
    (series,) = load_series(db, model="m")
    assert [round(p.value, 1) for p in series.points][:2] == [3.0, 3.0]
    (step,) = series.steps
    assert step.index == 8 and step.commit == "c08" and step.size == pytest.approx(0.2, abs=0.01)
    for suffix in ("png", "svg"):
        path = plot([series], tmp_path / f"history.{suffix}")
        assert path.stat().st_size > 1000
    with pytest.raises(HarnessError, match="png or .svg"):
        plot([series], tmp_path / "history.jpg")
    text = lines(series)
    assert text[0].startswith("m (fused) · torch") and len(text) == 1 + 16 + 1  # header, runs, the step
    assert "2026-11-01 00:00" in text[1] and "run run00" in text[1] and "commit c00" in text[1]
    assert "step +20" in text[9] and "run run08" in text[10]


def test_quick_and_default_runs_are_separate_series(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    rng = np.random.default_rng(0)
    for i in range(4):
        for preset, p50 in (("quick", 5.0), ("default", 3.0)):
            rec = record(process_samples(rng, p50 * 1e6), run_id=f"{preset}{i}", created=f"2026-11-0{i + 1}T00:00:00")
            rec["protocol"]["preset"] = preset
            store.index_record(db, rec, tmp_path / f"{preset}{i}.json")
    quick, default = sorted(load_series(db), key=lambda s: s.preset != "quick")
    assert quick.preset == "quick" and "quick preset" in quick.label and len(quick.points) == 4
    assert {round(p.value) for p in default.points} == {3} and not default.steps
    assert [s.preset for s in load_series(db, preset="default")] == ["default"]


def test_one_point_or_no_match_is_a_clear_error(tmp_path: Path) -> None:
    db = _index(tmp_path, [3.0])
    with pytest.raises(HarnessError, match="only one run"):
        load_series(db)
    with pytest.raises(HarnessError, match="no measured jobs"):
        load_series(db, model="other")
    with pytest.raises(HarnessError, match="no index"):
        load_series(tmp_path / "absent.sqlite")


def test_the_gate_history_is_each_lockstep_nights_ratio_with_its_steps(tmp_path: Path, monkeypatch) -> None:
    """Nights of the lockstep gate: their ratio against the pinned environment, per key, a step where the
    runtime got slower, and the stored-baseline nights left out (their ratios are not against a pinned env)."""
    import json

    from typer.testing import CliRunner

    from harness.cli import app
    from harness.track.history import gate_series

    key = {"model": "mobileone_s0", "form": "fused", "backend": "onnxruntime", "device": "cpu", "precision": "fp32",
           "batch": 1, "threads": 1, "boundary": "host-sync"}
    ratios = _noisy([(8, 1.0), (6, 1.08)], sd=0.005)
    for night, ratio in enumerate(ratios):
        folder = tmp_path / "results" / "runs" / f"nightly-202612{night + 1:02d}-031700-abcdef"
        folder.mkdir(parents=True)
        (folder / "compare.json").write_text(json.dumps({
            "created": f"2026-12-{night + 1:02d}T03:17:00+00:00", "commit": f"c{night:06d}", "method": "lockstep: ...",
            "rows": [{"key": key, "ratio": ratio, "ci_low": ratio - 0.01, "ci_high": ratio + 0.01, "verdict": "same"}]}))
    stored = tmp_path / "results" / "runs" / "nightly-20261231-031700-ffffff"
    stored.mkdir()
    (stored / "compare.json").write_text(json.dumps({"method": "quiet-window p50 ratio", "rows": [
        {"key": key, "ratio": 5.0, "ci_low": 4.0, "ci_high": 6.0, "verdict": "slower"}]}))
    (series,) = gate_series(tmp_path / "results")
    assert series.unit == "x" and len(series.points) == len(ratios) and [s.index for s in series.steps] == [8]
    assert series.steps[0].size == pytest.approx(0.08, abs=0.01) and series.steps[0].commit == "c000008"
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(app, ["history", "--series", "gate", "--plot", "gate.png"])
    assert shown.exit_code == 0, shown.output
    assert "---- step +" in shown.stdout and " x [" in shown.stdout and "run nightly-20261231" not in shown.stdout
    assert (tmp_path / "gate.png").stat().st_size > 1000


def test_history_follows_the_relative_figure_per_reference_and_ms_on_request(tmp_path: Path, monkeypatch) -> None:
    """The milliseconds swing with the host (here +-15%, run to run) while the relative figure holds: no
    step is found on it; a new reference identity (another torch) starts a series of its own; `--ms` shows
    the milliseconds."""
    from typer.testing import CliRunner

    from harness.cli import app

    db = tmp_path / "results" / "index.sqlite"
    rng = np.random.default_rng(1)
    host = [1.0, 1.15, 0.9, 1.12, 0.88, 1.15, 0.9, 1.1, 0.92, 1.14]
    for i, speed in enumerate(host):
        rec = record(process_samples(rng, 3e6 * speed, process_sd=0.0, iter_sd=0.001), run_id=f"run{i:02d}",
                     created=f"2026-11-{i + 1:02d}T00:00:00+00:00", commit=f"c{i:02d}")
        with_relative(rec, 1.5 * rng.normal(1, 0.004), torch="2.14.1" if i < 8 else "2.15.0")
        store.index_record(db, rec, tmp_path / f"{i}.json")
    old, new = load_series(db)
    assert old.unit == new.unit == "rel" and "relative to conv-dense (torch 2.14.1)" in old.label
    assert len(old.points) == 8 and len(new.points) == 2 and not old.steps
    assert all(abs(p.value / 1.5 - 1) < 0.02 for p in old.points)
    (ms,) = load_series(db, "ms")
    assert ms.unit == "ms" and len(ms.points) == 10 and max(p.value for p in ms.points) > 3.3
    with pytest.raises(HarnessError, match="unknown figure"):
        load_series(db, "seconds")
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(app, ["history"])
    assert shown.exit_code == 0, shown.output
    assert "x ref [" in shown.stdout and "relative to conv-dense (torch 2.15.0)" in shown.stdout
    assert " ms [" in CliRunner().invoke(app, ["history", "--series", "ms"]).stdout


def test_a_change_point_that_barely_moves_the_median_is_not_a_step(tmp_path: Path) -> None:
    """Six sweeps, one slow blip in the third: PELT may split after it, but a -0.5% move is not a step."""
    blip = [3.00, 3.01, 3.35, 2.99, 2.985, 2.99]
    assert change_points(blip) == [3]  # PELT does split it: the minimum size is what keeps it out
    db = _index(tmp_path, blip)
    (series,) = load_series(db, "ms")
    assert series.steps == []
    db2 = _index(tmp_path / "b", [3.0, 3.01, 2.99, 3.3, 3.31, 3.29])  # a real +10% step is still found
    (stepped,) = load_series(db2, "ms")
    assert [st.index for st in stepped.steps] == [3]
