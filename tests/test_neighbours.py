"""A busy neighbour is named before the sweep, waited for (bounded), and marks the run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from harness.host import machine
from harness.host.neighbours import BUSY_LIMIT, Busy, measure_others, wait_for_quiet


class _FakeProcess:
    """A process as psutil shows it, with a fixed share of a core (no real process, no wall clock)."""

    def __init__(self, pid: int, name: str, percent: float) -> None:
        self.pid, self.info, self.percent = pid, {"name": name}, percent

    def cpu_percent(self, interval=None) -> float:
        return self.percent


def test_the_busiest_other_processes_are_seen_and_named(monkeypatch) -> None:
    import psutil

    table = [_FakeProcess(os.getpid(), "pytest", 100.0), _FakeProcess(101, "idle", 1.0),
             _FakeProcess(202, "python", 98.0), _FakeProcess(303, "stress", 60.0), _FakeProcess(404, "sh", 3.0),
             _FakeProcess(505, "ray", 20.0)]
    monkeypatch.setattr(psutil, "process_iter", lambda attrs=None: iter(table))
    monkeypatch.setattr(time, "sleep", lambda s: None)
    busy = measure_others(0.5)
    assert busy.cores == 1.82  # every other process (this one and its children are not neighbours)
    assert [(name, pid) for name, pid, _ in busy.top] == [("python", 202), ("stress", 303), ("ray", 505)]
    assert busy.line().startswith("other processes are using 1.82 cores of this machine: python (pid 202, 0.98 cores)")


def test_wait_for_quiet_returns_nothing_when_quiet_and_a_line_when_it_stays_busy() -> None:
    lines: list[str] = []
    quiet = Busy(0.05, [])
    busy = Busy(1.0, [("stress", 42, 1.0)])
    assert wait_for_quiet(5, lines.append, measure=lambda: quiet) is None and lines == []
    answers = iter([busy, busy, quiet])
    assert wait_for_quiet(5, lines.append, measure=lambda: next(answers)) is None
    assert "stress (pid 42" in lines[0] and "quiet now" in lines[-1]
    marked = wait_for_quiet(0.0, lines.append, measure=lambda: busy)
    assert marked is not None and "stress" in marked and "measuring anyway" in lines[-1]
    assert BUSY_LIMIT < 1.0


def test_other_processes_cpu_during_a_job_becomes_a_reason() -> None:
    before = machine.snapshot()
    spinner = subprocess.Popen([sys.executable, "-c", "import time\\nend = time.time() + 0.8\\nwhile time.time() < end: pass"])
    spinner.wait()
    signals = machine.between(before, machine.snapshot())
    assert signals["others_cpu"] > 0.3
    reasons = machine.disturbances([{"machine": signals}], cores=2)
    assert any("other processes used" in r for r in reasons)
