"""`bench ab`: two resident sides take turns; pairs, floor and verdicts follow; `bench compare` reads them again."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backends import registry
from harness.cli import app
from harness.errors import HarnessError
from harness.measure.inputs import Stores
from harness.measure.jobs import plan
from harness.measure.paired import paired_ci
from harness.measure.protocol import preset
from harness.store import runs as store
from harness.track.compare import compare_runs
from harness.track.lockstep import Paired, Pairing, Side, parse_side, run_lockstep, stored_pairs
from tests.fake_backends import ALL
from tests.helpers import InProcessLauncher

CFG = preset("default", warmup_s=0.02, warmup_max_s=0.2, timeout_s=120.0)
MODEL = "timm:test_byobnet"


@pytest.fixture(autouse=True)
def fake_backends():
    registry.register("fake-sleep", ALL["fake-sleep"])
    yield
    registry.unregister("fake-sleep")


def test_lockstep_sides_run_resident_with_their_own_environment(tmp_path: Path) -> None:
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    steps = []
    sides = (Side("baseline", env={"ONEBENCH_FAKE_DELAY_S": "0.002"}),
             Side("candidate", env={"ONEBENCH_FAKE_DELAY_S": "0.004"}))
    base, cand, paired = run_lockstep(jobs, CFG, sides, tmp_path / "ls", Stores(cache_dir=tmp_path / "cache", index_db=tmp_path / "index.sqlite"), Pairing(pairs=6, window_s=0.02), progress=lambda job, i, n: steps.append(i))
    indexed = store.query(tmp_path / "index.sqlite")  # as written, not only after an index rebuild
    assert sorted(r["run_id"] for r in indexed) == ["ls-baseline", "ls-candidate"]
    assert steps == [-2, -1, 0, 1, 2, 3, 4, 5]  # two warm-up alternations, then the pairs
    assert base[0]["status"] == "ok" == cand[0]["status"]
    assert len(paired) == 1 and len(paired[0].base) == 6 == len(paired[0].cand)
    assert len(paired[0].aa) == 5  # ABBA: the same side twice in a row between every two pairs
    assert len(cand[0]["processes"][0]["windows"]) == 6 and cand[0]["parity"]["passed"]
    assert (tmp_path / "ls" / "lockstep.json").exists() and (tmp_path / "ls" / "candidate" / "records").is_dir()
    result = compare_runs(base, cand, 0.05, paired)
    assert len(result.rows) == 1 and "lockstep" in result.method  # the ratio a real sleep gives: the slow test below
    # stored, the two sides compare again by their paired windows (`bench compare DIR/baseline DIR/candidate`)
    assert stored_pairs(tmp_path / "ls" / "baseline", tmp_path / "ls" / "candidate") == paired
    assert stored_pairs(tmp_path / "ls" / "candidate", tmp_path / "ls" / "baseline") is None  # not the sides' order


@pytest.mark.slow
def test_a_side_that_sleeps_twice_as_long_is_a_regression_in_lockstep(tmp_path: Path) -> None:
    """Wall clock, hence the slow lane: 20 against 10 ms of sleep per inference, and the verdict follows."""
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    sides = (Side("baseline", env={"ONEBENCH_FAKE_DELAY_S": "0.010"}),
             Side("candidate", env={"ONEBENCH_FAKE_DELAY_S": "0.020"}))
    base, cand, paired = run_lockstep(jobs, CFG, sides, tmp_path / "ls", Stores(cache_dir=tmp_path / "cache"), Pairing(pairs=6, window_s=0.1))
    row = compare_runs(base, cand, 0.05, paired).rows[0]
    assert row.ratio > 1.5 and row.regression


def test_a_side_that_dies_is_an_error_record(tmp_path: Path) -> None:
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    sides = (Side("baseline"), Side("candidate", env={"ONEBENCH_PLUGINS": "no_such_plugin_module"}))
    base, cand, paired = run_lockstep(jobs, CFG, sides, tmp_path / "ls", Stores(cache_dir=tmp_path / "cache"), Pairing(pairs=3, window_s=0.01))
    assert cand[0]["status"] == "error" and "candidate process died" in cand[0]["message"]
    assert "no_such_plugin_module" in cand[0]["message"] and paired == []


def test_paired_statistics_and_input_checks(tmp_path: Path) -> None:
    ratios = np.random.default_rng(0).normal(1.10, 0.01, 40)
    med, lo, hi = paired_ci(ratios)
    assert lo < 1.10 < hi and hi - lo < 0.02
    p = Paired(("k",), [1.0, 2.0], [1.1, 2.2], [(1.0, 1.02), (1.0, 1.02)])
    assert np.allclose(p.ratios(), [1.1, 1.1])
    assert np.allclose(p.aa_ratios(), [1.02, 1.02])  # the second turn in a row against the first
    assert Paired.from_dict(p.as_dict()) == p
    side = parse_side("candidate", ["env.A=1", "env.B=x=y", f"python={sys.executable}", "weights=w.pth"])
    assert side == Side("candidate", sys.executable, {"A": "1", "B": "x=y"}, "w.pth")
    for bad in ("nokey", "A=1", "env.=1", "pythons=x", "env.A B=1", "env.1A=1"):
        with pytest.raises(HarnessError, match="KEY=VALUE with KEY one of python, weights, env.NAME"):
            parse_side("candidate", [bad])
    with pytest.raises(HarnessError, match="env.A= is given twice"):
        parse_side("candidate", ["env.A=1", "env.A=2"])
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1)
    with pytest.raises(HarnessError, match="--pairs"):
        run_lockstep(jobs, CFG, (Side("a"), Side("b")), tmp_path / "x", Stores(cache_dir=tmp_path / "c"), Pairing(pairs=1))
    with pytest.raises(HarnessError, match="--pairs must be between 3"):
        Pairing(pairs=99_999_999_999).checked()


@pytest.mark.parametrize("python", ["", "nope/bin/python", "without-onebench"])
def test_a_side_interpreter_that_cannot_run_onebench_is_one_line_before_anything_starts(python: str, tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """#49: a missing or empty python= left empty lockstep folders; one without onebench died mid-run."""
    monkeypatch.chdir(tmp_path)
    if python == "without-onebench":  # an interpreter without onebench's dependencies (no site-packages)
        python = str(tmp_path / "python")
        Path(python).write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
        Path(python).chmod(0o755)
    result = CliRunner().invoke(app, ["ab", "-m", MODEL, "-b", "fake-sleep", "--candidate", f"python={python}"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "python=" in result.stderr and not list(tmp_path.rglob("lockstep-*"))


def test_an_undecided_key_gets_more_pairs_until_it_decides_or_its_budget_is_spent(tmp_path: Path, monkeypatch) -> None:
    from harness.track.lockstep import Decisive

    # paired ratios spread from 0.95 to 1.11: the CI of their median holds both 1.00 and 1.05
    straddles = Paired(("k",), [1.0] * 21, list(np.linspace(0.95, 1.11, 21)), [(1.0, 1.0)] * 5)
    clear = Paired(("k",), [1.0] * 20, [1.2] * 20, [(1.0, 1.0)] * 5)
    assert Decisive(0.05).undecided(straddles) and not Decisive(0.05).undecided(clear)
    calls = iter([True, True, False])  # undecided twice, then the CI decides
    monkeypatch.setattr(Decisive, "undecided", lambda self, paired: next(calls))
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    decisive = Decisive(0.05, key_s=60, total_s=60, batch=4)
    base, cand, paired = run_lockstep(jobs, CFG, (Side("baseline"), Side("candidate")), tmp_path / "ls", Stores(cache_dir=tmp_path / "cache"), Pairing(pairs=3, window_s=0.01, decisive=decisive),
                                      launcher=InProcessLauncher())  # the patched verdicts decide in this process
    assert len(paired[0].base) == 3 + 2 * 4 and cand[0]["processes"][0]["lockstep"]["pairs"] == 11
    assert decisive.spent_s > 0


@pytest.mark.slow
def test_a_key_that_never_decides_stops_at_its_budget(tmp_path: Path, monkeypatch) -> None:
    from harness.track.lockstep import Decisive

    monkeypatch.setattr(Decisive, "undecided", lambda self, paired: True)
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    spent = Decisive(0.05, key_s=0.3, total_s=60, batch=2)
    _, _, paired = run_lockstep(jobs, CFG, (Side("baseline"), Side("candidate")), tmp_path / "ls", Stores(cache_dir=tmp_path / "cache"), Pairing(pairs=3, window_s=0.01, decisive=spent),
                                launcher=InProcessLauncher())
    assert len(paired[0].base) > 3 and spent.spent_s >= spent.key_s  # it ran until its budget ended it


def test_a_lockstep_rows_milliseconds_divide_to_its_printed_ratio() -> None:
    """The row's ratio is the median of paired ratios; its ms columns must say the same thing (the old
    columns were each side's own median window, which need not divide to it)."""
    from harness.store.record import Record
    from harness.track.compare import compare_paired
    from tests.synthetic import record

    base_w = [10.0, 10.0, 30.0, 30.0, 30.0]
    cand_w = [12.0, 12.0, 31.0, 31.0, 31.0]  # ratios 1.2, 1.2, 1.033.. x3: median 1.033; medians of sides 30 / 31
    paired = Paired(("k",), [w * 1e6 for w in base_w], [w * 1e6 for w in cand_w], [])
    rng = np.random.default_rng(0)
    base, cand = record([rng.normal(5e6, 1e4, 40)]), record([rng.normal(5e6, 1e4, 40)])
    row = compare_paired(Record.of(base), Record.of(cand), paired, 0.05)
    assert row.ratio == pytest.approx(31 / 30)
    assert row.candidate_p50_ms / row.baseline_p50_ms == pytest.approx(row.ratio)
    assert row.baseline_p50_ms == pytest.approx(30.0)


def test_over_several_pairs_of_processes_the_ci_resamples_them_first() -> None:
    """A bias that stays with one process for its life: the first pair of processes says +3%, a fresh pair
    says 0%. Pooled as one set of 40 pairs the CI excludes 1 (a difference); resampled by pair of processes
    first it is wider on both sides and holds 1. Where both pairs of processes agree it stays clear."""
    rng = np.random.default_rng(1)
    both = np.concatenate([rng.normal(1.03, 0.01, 20), rng.normal(1.00, 0.01, 20)])
    _, flat_lo, flat_hi = paired_ci(both)
    _, lo, hi = paired_ci(both, rounds=[20, 20])
    assert 1 < flat_lo and lo < 1 < hi  # the process pairs' disagreement is in the CI, not taken for a change
    assert lo < flat_lo - 0.004 and hi > flat_hi + 0.004
    agree = np.concatenate([rng.normal(1.10, 0.003, 20), rng.normal(1.10, 0.003, 23)])
    _, lo, hi = paired_ci(agree, rounds=[20, 23])
    assert 1.09 < lo < hi < 1.11
    p = Paired(("k",), [1.0] * 4, [1.1] * 4, [], [3, 1])
    assert Paired.from_dict(p.as_dict()) == p and Paired(("k",), [1.0] * 4, [1.1] * 4, []).rounds == [4]


@pytest.mark.parametrize("verdict, confirm, rounds", [("slower", True, [3, 3]), ("same", True, [3]), ("slower", False, [3])])
def test_a_key_found_slower_is_measured_again_by_a_fresh_pair_of_processes(verdict: str, confirm: bool, rounds: list[int],
                                                                           tmp_path: Path, monkeypatch) -> None:
    """The verdict of the first pair of processes is faked (no wall clock here): "slower" brings a second pair
    of processes whose pairs join the first's; each side's record holds both processes; "same" does not, nor
    does a comparison told not to confirm."""
    from harness.track.lockstep import Decisive

    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    said: list[str] = []
    monkeypatch.setattr(Decisive, "verdict", lambda self, paired: verdict)
    decisive = Decisive(0.05, confirm=confirm)
    base, cand, paired = run_lockstep(jobs, CFG, (Side("baseline"), Side("candidate")), tmp_path / "ls",
                                      Stores(cache_dir=tmp_path / "cache"), Pairing(pairs=3, window_s=0.01, decisive=decisive),
                                      say=said.append, launcher=InProcessLauncher())  # the patched verdict decides here
    assert paired[0].rounds == rounds and len(paired[0].base) == sum(rounds)
    assert len(base[0].processes) == len(rounds) == len(cand[0].processes)
    assert [len(p.windows) for p in cand[0].processes] == [3] * len(rounds)
    why = compare_runs(base, cand, 0.05, paired).rows[0].why
    assert ("2 pairs of processes" in why) == (rounds == [3, 3])
    assert len(said) == (rounds == [3, 3]) and all("measured again by a fresh pair" in s for s in said)


def test_an_interrupted_ab_does_not_promise_a_resume(tmp_path: Path, monkeypatch) -> None:
    """#49: `bench ab` cannot resume, so its interrupt does not say a run folder resumes; `bench run`'s does."""
    from harness.track import lockstep

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lockstep, "run_lockstep", interrupted)
    result = CliRunner().invoke(app, ["ab", "-m", MODEL, "-b", "fake-sleep"])
    assert result.exit_code == 130 and "does not resume" in result.stderr and "resumes where" not in result.stderr
