"""A user's Ctrl-C (SIGINT) or a CI cancellation (SIGTERM) in the middle of a small sweep (`bench run`), then the same
command with the same `--out`: exit 130 with one line and no traceback, then a finished run in which every
job has one record, the records written before the signal are kept as they were, and no process is counted
twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.tiny_mobileone import NAME as TINY

pytestmark = pytest.mark.slow

RUN = ["run", "-m", TINY, "-b", "torch", "--batch", "1", "--batch", "2", "--batch", "4", "--batch", "8",
       "--threads", "1", "--reference", "none", "--wait-quiet", "0", "--out", "run", "--format", "md"]


def _env(here: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "ONEBENCH_PLUGINS": "tests.tiny_mobileone",
            "ONEBENCH_CACHE": str(here / "cache")}


def _as_at_a_terminal() -> None:
    """A command typed at a terminal gets Ctrl-C; one started in the background by a non-interactive shell (a CI
    job's `cmd &`, `nohup`) inherits SIGINT ignored, and `bench` keeps it ignored, as every program does: a
    test run so once saw SIGINT "unheeded" (exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _records(here: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (here / "run" / "records").glob("*.json")}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_then_the_same_out_loses_nothing_and_repeats_nothing(signum: int, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "harness", *RUN], cwd=tmp_path, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_at_a_terminal)
    # mid-sweep: once its first step has landed (partial state or a record), as a user's Ctrl-C minutes into a
    # sweep (a signal in the first seconds, while modules import: tests/test_interrupts.py)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not any(
            (tmp_path / "run" / sub).glob("*.json") for sub in ("partial", "records")):
        time.sleep(0.2)
    time.sleep(2)
    assert proc.poll() is None, "the run ended before the signal: make it longer"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=300)
    # 130: stopped, resumable. The head of stderr says what aborted, if anything (a -6 once in CI: SIGABRT, an
    # interrupt raised inside torch's native init while `import torch` ran; since then held until the import
    # ends, harness/interrupts.py), the tail where
    assert proc.returncode == 130, stderr[:3000] + "\n[...]\n" + stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    before = _records(tmp_path)
    done = subprocess.run([sys.executable, "-m", "harness", *RUN], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _records(tmp_path)
    assert len(after) == 4  # one record per job: none lost, none written twice
    for name, content in before.items():  # what was measured before the signal stays as it was, measured once
        old, new = json.loads(content), json.loads(after[name])
        # (the run-level verdicts may be judged again with the whole run: the machine probe's best, the GEMM
        # peak after the sweep, `runner.recheck_probes` / `repeak`; a CI run under a hog changed them once)
        assert (new["created"], new["processes"], new["stats"]["p50"]) == (old["created"], old["processes"],
                                                                            old["stats"]["p50"]), name
    assert not list((tmp_path / "run" / "partial").glob("*.json"))
    protocol = json.loads((tmp_path / "run" / "run.json").read_text())["protocol"]
    for content in after.values():
        rec = json.loads(content)
        assert rec["status"] == "ok", rec["message"]
        timed = [tuple(p["samples_ns"]) for p in rec["processes"]]  # a process kept twice has the same samples twice
        assert len(timed) <= protocol["max_repeats"] and len(set(timed)) == len(timed)
