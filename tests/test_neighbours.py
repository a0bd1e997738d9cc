"""A busy neighbour is named before the sweep, waited for (bounded), and marks the run."""

from __future__ import annotations

import os
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
    at_the_limit, above = Busy(BUSY_LIMIT, [("a", 1, BUSY_LIMIT)]), Busy(BUSY_LIMIT + 0.01, [("a", 1, BUSY_LIMIT)])
    assert wait_for_quiet(0.0, lines.append, measure=lambda: at_the_limit) is None  # the limit itself is quiet
    assert wait_for_quiet(0.0, lines.append, measure=lambda: above) is not None


def test_other_processes_cpu_during_a_job_becomes_a_reason() -> None:
    """From two /proc snapshots (made up: no spinner, no wall clock): 1.2 s of the machine's busy time in 2 s, 0.2 s
    of it this process's own, leaves 0.5 cores to the others, which marks the job; steal likewise."""
    hz = machine.HZ
    before = machine.Snapshot(100.0, 0.5, machine.CpuTimes(total=10_000, steal=0, busy=4_000), 2000.0, 1.0)
    after = machine.Snapshot(102.0, 0.6, machine.CpuTimes(total=10_000 + 4 * hz, steal=int(0.2 * hz), busy=4_000 + int(1.2 * hz)),
                             2000.0, 1.2)
    signals = machine.between(before, after)
    assert abs(signals["others_cpu"] - 0.5) < 0.01 and abs(signals["steal_frac"] - 0.05) < 0.01
    reasons = machine.disturbances([{"machine": signals}], cores=2)
    assert any("other processes used 0.50 cores" in r for r in reasons)
    quiet = machine.between(before, machine.Snapshot(102.0, 0.6, machine.CpuTimes(10_000 + 4 * hz, 0, 4_000 + int(0.2 * hz)),
                                                     2000.0, 1.2))
    assert quiet["others_cpu"] < 0.01 and machine.disturbances([{"machine": quiet}], cores=2) == []