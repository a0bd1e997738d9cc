"""The gate fails closed and the stores hold together: a side that never ran, a sweep that measured nothing,
a wrapped backend, a locked run folder, a corrupt run beside good ones, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backends import registry
from harness.cli import app
from harness.errors import HarnessError
from harness.measure.inputs import Stores
from harness.measure.jobs import plan
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep
from harness.store import records
from harness.store import runs as store
from harness.track.compare import compare_runs
from harness.track.lockstep import Pairing, Side, run_lockstep
from tests.fake_backends import ALL
from tests.helpers import ROOT
from tests.synthetic import record

MODEL = "timm:test_byobnet"
CFG = preset("default", warmup_s=0.02, warmup_max_s=0.2, timeout_s=60.0, probe=False)
PLUGIN = {"ONEBENCH_PLUGINS": "tests.fake_backends_plugin"}


pytestmark = pytest.mark.usefixtures("fake_backends")  # tests/conftest.py: the doubles registered


@pytest.fixture
def here(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONEBENCH_CACHE", str(tmp_path / "cache"))
    for key, value in PLUGIN.items():
        monkeypatch.setenv(key, value)
    return tmp_path


@pytest.mark.parametrize("candidate", ["/bin/true", "garbage"])
def test_lockstep_fails_closed_when_the_candidate_never_runs(here: Path, candidate: str) -> None:
    if candidate == "garbage":  # an interpreter that answers, but not onebench's protocol
        script = here / "garbage.sh"
        script.write_text("#!/bin/sh\necho 'hello from a wrong environment'\ncat > /dev/null\n")
        script.chmod(0o755)
        candidate = str(script)
    jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
    base, cand, paired = run_lockstep(jobs, CFG, (Side("baseline"), Side("candidate", python=candidate)), here / "ls", Stores(cache_dir=here / "cache"), Pairing(pairs=3, window_s=0.01))
    assert cand[0]["status"] == "error" and paired == []
    result = compare_runs(base, cand, 0.05, paired)
    assert result.exit_code == 3 and result.failures[0].startswith("no job was compared")
    if candidate != "/bin/true":
        return  # the command line once is enough
    cli = CliRunner().invoke(app, ["ab", "-m", MODEL, "-b", "fake-sleep", "--pairs", "3",
                                   "--window-ms", "20", "--candidate", f"python={candidate}"])
    assert cli.exit_code == 3, cli.output
    assert "FAILED CLOSED" in cli.output and "0 regression(s) over 0 compared jobs" in cli.output


def test_a_sweep_that_measured_nothing_exits_3(here: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--preset", "quick", "-m", MODEL, "-b", "fake-raise", "-b", "fake-missing",
                                      "--out", "run", "--wait-quiet", "0"])
    assert result.exit_code == 3, result.output
    assert "no job was measured" in result.stderr and len(list((here / "run" / "records").iterdir())) == 2


def test_a_wrapped_builtin_backend_and_the_plugins_are_named_in_its_records(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ONEBENCH_PLUGINS", "tests.fake_backends_plugin")
    with pytest.raises(ValueError, match="built-in backend"):
        registry.register("torch", ALL["fake-sleep"])
    registry.wrap("torch", ALL["fake-sleep"])
    try:
        jobs = plan([MODEL], ["torch"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
        rec = run_sweep(jobs, preset("quick", min_s=0.05, max_s=0.1, probe=False), tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))[0]
    finally:
        registry.unregister("torch")
    assert registry.ref("torch") == registry.BUILTIN["torch"]
    assert rec["status"] == "ok" and rec["backend_info"]["wrapped_by"] == ALL["fake-sleep"]
    assert rec["host"]["plugins"] == ["tests.fake_backends_plugin"]


def test_a_run_folder_takes_one_sweep_at_a_time(tmp_path: Path) -> None:
    with store.locked(tmp_path / "run"):
        jobs = plan([MODEL], ["fake-sleep"], ["fp32"], [1], threads=1, input_sizes={MODEL: 64})
        with pytest.raises(HarnessError, match="being written by another sweep"):
            run_sweep(jobs, CFG, tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))
    assert not (tmp_path / "run" / "records").exists()


def _run(root: Path, name: str, model: str = "a") -> Path:
    rec = record([np.full(30, 1e6)], model=model, run_id=name)
    path = root / "results" / "runs" / name / "records" / f"{model}.json"
    records.write_record(path, rec)
    return path


def test_one_corrupt_record_neither_blocks_the_index_nor_hides_behind_latest(here: Path) -> None:
    _run(here, "20261101-000000-aaaaaa")
    time.sleep(0.01)
    bad = _run(here, "20261102-000000-bbbbbb")
    bad.write_text(bad.read_text().replace('"status":"ok"', '"status":"fine"'))
    os.utime(bad.parent.parent, None)
    rebuilt = CliRunner().invoke(app, ["reindex"])
    assert rebuilt.exit_code == 0 and "indexed 1 records" in rebuilt.output and "skipped:" in rebuilt.stderr
    shown = CliRunner().invoke(app, ["leaderboard", "--format", "csv"])
    assert shown.exit_code == 0 and "unreadable records" in shown.stderr and "20261102" in shown.stderr


def test_a_record_written_by_hand_with_a_figure_it_never_measured_is_refused() -> None:
    rec = record([np.full(30, 1e6), np.full(30, 1.1e6)], model="a")
    records.validate(rec)
    for change in ({"p50": 1}, {"n": 7}, {"ci_low": 2e6, "ci_high": 1e6}, {"min": 5}):
        edited = json.loads(json.dumps(rec))
        edited["stats"].update(change)
        with pytest.raises(HarnessError, match="do not follow from its samples"):
            records.validate(edited)


@pytest.mark.slow
def test_sigterm_stops_a_sweep_like_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, **PLUGIN, "ONEBENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT),
           "ONEBENCH_FAKE_DELAY_S": "0.01"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-m", MODEL, "-b", "fake-sleep",
                             "--repeats", "50", "--out", "run", "--wait-quiet", "0"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    # wait for a step's partial state on disk, not only its folder: beside a one-core hog the folder was there,
    # still empty, when the signal landed (a sweep with nothing yet to resume)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "run" / "partial").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)  # as a CI runner cancels a job: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert list((tmp_path / "run" / "partial").iterdir())  # resumable
