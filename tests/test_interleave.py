"""`bench compare --interleave`: sides alternate in fresh interpreters, and a planted slowdown is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import registry
from harness.compare import compare_runs
from harness.errors import HarnessError
from harness.interleave import Side, parse_env, run_interleaved
from harness.jobs import plan
from harness.protocol import preset
from tests.fake_backends import ALL

CFG = preset("default", repeats=2, min_s=0.3, max_s=0.6, warmup_s=0.05, warmup_max_s=0.3, timeout_s=120.0)


@pytest.fixture(autouse=True)
def fake_backends():
    registry.register("fake-sleep", ALL["fake-sleep"])
    yield
    registry.unregister("fake-sleep")


def test_interleaved_sides_run_with_their_own_environment(tmp_path: Path) -> None:
    jobs = plan(["timm:test_byobnet"], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={"timm:test_byobnet": 64})
    order = []
    sides = (Side("baseline", env={"ONEBENCH_FAKE_DELAY_S": "0.002"}),
             Side("candidate", env={"ONEBENCH_FAKE_DELAY_S": "0.006"}))
    base, cand = run_interleaved(jobs, CFG, sides, tmp_path / "il", tmp_path / "cache",
                                 progress=lambda job, side, r: order.append(side))
    assert order == ["baseline", "candidate", "candidate", "baseline"]  # A B B A: neither side always first
    assert base[0]["status"] == "ok" == cand[0]["status"] and len(cand[0]["processes"]) == 2
    assert (tmp_path / "il" / "candidate" / "records").is_dir()
    result = compare_runs(base, cand, 0.05)
    assert result.rows[0].ratio > 1.5  # 6 vs 2 ms of sleep: the candidate's environment reached its processes


def test_interleave_input_checks(tmp_path: Path) -> None:
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(HarnessError, match="KEY=VALUE"):
        parse_env(["nokey"])
    jobs = plan(["timm:test_byobnet"], ["fake-sleep"], ["fp32"], [1], threads=1)
    with pytest.raises(HarnessError, match="at least 2 processes"):
        run_interleaved(jobs, preset("quick"), (Side("a"), Side("b")), tmp_path / "x", tmp_path / "c")
