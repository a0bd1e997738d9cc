"""A busy neighbour is named before the sweep, waited for (bounded), and marks the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from harness.host import machine
from harness.host.neighbours import BUSY_LIMIT, Busy, measure_others, wait_for_quiet


def test_a_spinning_process_is_seen_and_named() -> None:
    # started through a shell that exits at once, so the spinner is not our child (ours are not neighbours)
    out = subprocess.run(["sh", "-c", f"'{sys.executable}' -c 'import time\nend = time.time() + 5\nwhile time.time() < end: pass' "
                          ">/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True)
    pid = int(out.stdout.strip())
    try:
        time.sleep(0.3)
        busy = measure_others(0.5)
    finally:
        os.kill(pid, signal.SIGKILL)
    assert busy.cores > 0.5 and any(p == pid for _, p, _ in busy.top)
    assert "python" in busy.line() and f"pid {pid}" in busy.line()


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
