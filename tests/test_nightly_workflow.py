"""The nightly workflow's own gate command, run here as the CI runner runs it: lockstep against the environment
pinned by constraints-baseline.txt (built once per file, kept in a shared cache between test runs)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
ENVS = Path(os.environ.get("ONEBENCH_TEST_ENVS", Path.home() / ".cache" / "onebench-test-envs"))


def gate_command() -> list[str]:
    """The `bench nightly` line of the workflow's gate step, as words."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gate"]["steps"]
    script = next(s["run"] for s in steps if "bench nightly" in s.get("run", ""))
    line = next(ln.strip() for ln in script.splitlines() if "bench nightly" in ln)
    return shlex.split(line)


def test_the_workflow_gates_in_lockstep_against_the_pinned_environment() -> None:
    words = gate_command()
    assert words[0].endswith("bench") and words[1] == "nightly"
    assert words[words.index("--baseline-constraints") + 1] == "constraints-baseline.txt"
    text = WORKFLOW.read_text()
    assert "hashFiles('constraints-baseline.txt')" in text and "~/.cache/onebench/envs" in text  # built once, cached
    pinned = (ROOT / "constraints-baseline.txt").read_text()
    assert "onnxruntime==" in pinned and "torch==" in pinned and "pytest==" not in pinned


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the first run on a machine builds the pinned baseline venv (torch included)
def test_the_workflow_gate_command_runs_here(tmp_path: Path) -> None:
    """The same command on one small model and ONNX Runtime, in a fresh results folder: a lockstep night with
    its comparison, the CI-log table, the gate's history, and an exit code the workflow knows."""
    shutil.copy(ROOT / "constraints-baseline.txt", tmp_path)
    words = gate_command()
    args = [sys.executable, "-m", "harness", *words[1:], "-m", "timm:test_byobnet", "-b", "onnxruntime",
            "--key-budget-s", "20"]
    env = {**os.environ, "ONEBENCH_CACHE": str(ENVS), "PYTHONPATH": str(ROOT)}
    env.pop("COLUMNS", None)  # a CI log: no TTY, no width
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    # An A/A night: whether it passes is a matter of timing (benchmarks/lockstep_gate.py measures how often it
    # does); what a test can hold is that the exit code says what the report says, and that a regression is
    # never claimed on one pair of processes (a flagged key is measured again by a fresh pair first)
    assert done.returncode in (0, 1, 5), done.stdout[-3000:] + done.stderr[-3000:]
    night = next((tmp_path / "results" / "runs").glob("nightly-*"))
    gate = json.loads((night / "compare.json").read_text())
    assert (done.returncode == 1) == any(row["regression"] for row in gate["rows"]), done.stdout[-3000:]
    pairs = json.loads((night / "lockstep.json").read_text())["pairs"]
    for row, paired in zip(gate["rows"], pairs):
        assert not row["regression"] or len(paired["rounds"]) == 2, (row, paired["rounds"])
    assert "lockstep" in gate["method"] and len(gate["rows"]) == 1 and gate["created"]
    assert "timm:test_byobnet · onnxruntime · fp32" in done.stdout and "ratio" in done.stdout
    numbers = [line for line in done.stdout.splitlines() if line.startswith("    ") and " ratio " in line]
    assert len(numbers) == 1 and len(numbers[0]) <= 80, numbers  # every figure of the key on one 80-column line
    assert "lockstep against" in done.stdout
