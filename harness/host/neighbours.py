"""Is another process keeping the machine busy? Asked before a sweep, so the user hears it first.

A benchmark beside a CPU-heavy neighbour measures the neighbour (seen here: a default sweep beside
another busy process took 19 minutes and printed CIs of +-1990%). Before the first round the sweep
samples every other process's CPU use for a second; when they use more than `BUSY_LIMIT` cores it
names the busiest, waits (bounded) for quiet, and otherwise goes on with the run marked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

BUSY_LIMIT = 0.25  # cores' worth of CPU used by other processes


@dataclass(frozen=True)
class Busy:
    cores: float  # CPU used by every other process, in cores
    top: list[tuple[str, int, float]]  # (name, pid, cores) of the busiest few

    def line(self) -> str:
        names = ", ".join(f"{name} (pid {pid}, {cores:.2f} cores)" for name, pid, cores in self.top)
        return f"other processes are using {self.cores:.2f} cores of this machine: {names}"


def measure_others(interval_s: float = 1.0) -> Busy:
    """CPU used by processes other than this one and its children over `interval_s`."""
    import psutil

    me = psutil.Process()
    ours = {me.pid} | {c.pid for c in me.children(recursive=True)}
    procs = [p for p in psutil.process_iter(["name"]) if p.pid not in ours]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(interval_s)
    used = []
    for p in procs:
        try:
            used.append((p.info["name"] or "?", p.pid, p.cpu_percent(None) / 100))
        except psutil.Error:
            pass
    used.sort(key=lambda u: -u[2])
    return Busy(sum(u[2] for u in used), [u for u in used[:3] if u[2] > 0.05])


def wait_for_quiet(max_wait_s: float, say: Callable[[str], None] = lambda _: None,
                   measure: Callable[[], Busy] = measure_others) -> str | None:
    """None when the machine is (or becomes) quiet within `max_wait_s`; else the line that marks the run."""
    busy = measure()
    if busy.cores <= BUSY_LIMIT:
        return None
    say(f"{busy.line()}; waiting up to {max_wait_s:g} s for quiet")
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        busy = measure()
        if busy.cores <= BUSY_LIMIT:
            say("the machine is quiet now; starting")
            return None
    say(f"still busy after {max_wait_s:g} s: measuring anyway, and the run is marked")
    return busy.line()
