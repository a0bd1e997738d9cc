"""How `bench run` talks while it measures: a plan line, what is being built, one line per finished job,
an ETA that learns from the steps already done, and a summary; `-q` keeps only the summary,
`--progress json` streams the same events as JSON lines for CI logs. Everything goes to stderr: stdout
is the leaderboard."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.measure.counted import INFERENCES as COUNTED_INFERENCES
from harness.measure.counted import PHASE as COUNT_PHASE
from harness.measure.jobs import Job
from harness.measure.runner import SweepListener, SweepPlan
from harness.measure.windows import MEANINGLESS_CI, rel_halfwidth
from harness.store.job_key import key_label
from harness.store.record import Record
from model_zoo.names import printable


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def figure(record: Record) -> str:
    """A finished job in one phrase: its p50 with a CI only where the CI means something, or why none."""
    s = record.stats
    if not record.ok or s is None:
        return f"{record.status}: {record.message}"
    half = rel_halfwidth(s.p50, s.ci_low, s.ci_high)
    ci = "" if half == math.inf else " (CI wider than ±50%: does not repeat)" if half > MEANINGLESS_CI else f" ±{half:.1%}"
    flags = []
    if record.unstable:
        flags.append("unstable: " + "; ".join(record.unstable_reasons[:1]))
    if record.parity_failed:
        flags.append("parity FAILED")
    return f"{s.p50_ms:.3f} ms{ci}" + (f"  [{' · '.join(flags)}]" if flags else "")


def machine_state() -> str | None:
    """Said with the plan: a load average above the cores means every number will be disturbed."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if load > cores:
        return (f"the machine is busy (load average {load:.1f} on {cores} cores): expect unstable figures, or stop "
                "what else runs")
    return None


class Eta:
    """Remaining time from the steps seen so far, per kind of step (preparations and timed processes
    differ by 10x); the plan's priors until a kind has been seen."""

    def __init__(self, plan: SweepPlan) -> None:
        self.left = {"prepare": plan.prepare_steps, "measure": plan.measure_steps}
        self.prior = {"prepare": plan.prior_prepare_s, "measure": plan.prior_measure_s}
        self.seen: dict[str, list[float]] = {"prepare": [], "measure": []}

    def done(self, phase: str, seconds: float) -> None:
        kind = "prepare" if phase == "prepare" else "measure"  # a one-process job's single step is a timed one
        self.seen[kind].append(seconds)
        self.left[kind] = max(0, self.left[kind] - 1)

    def seconds(self) -> float:
        return sum(n * (sum(self.seen[k]) / len(self.seen[k]) if self.seen[k] else self.prior[k])
                   for k, n in self.left.items())


class ConsoleSweep(SweepListener):
    """The human view: lines scroll above a one-line bar that says what runs now and the ETA."""

    def __init__(self, console: Console, folder: object) -> None:
        self.console, self.folder = console, folder
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
        self.task = None
        self.eta: Eta | None = None

    def __enter__(self) -> ConsoleSweep:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def line(self, text: str, style: str = "") -> None:
        # one event, one line: a message's own newlines (a runtime's traceback) cannot forge the next line
        self.bar.console.print(printable(" | ".join(text.splitlines())), markup=False, highlight=False,
                               style=style or None, soft_wrap=True)

    def planned(self, plan: SweepPlan) -> None:
        self.eta = Eta(plan)
        todo = plan.jobs - plan.resumed
        resumed = f" ({plan.resumed} already done in this folder)" if plan.resumed else ""
        steps = f"{plan.measure_steps} timed processes" + (f" (up to {plan.max_measure_steps} if figures need more)"
                                                          if plan.max_measure_steps > plan.measure_steps else "")
        prep = f" after {plan.prepare_steps} preparations" if plan.prepare_steps else ""
        self.line(f"plan: {plan.jobs} jobs{resumed}, {plan.processes} process(es) each: {steps}{prep}; at least "
                  f"{duration(plan.estimate_s)} (exports and compiles not yet cached add theirs) → {self.folder}")
        busy = machine_state()
        if busy:
            self.line(f"warning: {busy}", "yellow")
        self.task = self.bar.add_task("starting", total=todo)

    def step_started(self, job: Job, phase: str) -> None:
        if phase.startswith(COUNT_PHASE):  # valgrind is slow and silent: say what it is doing and why it takes long
            self.line(f"  · {phase}: valgrind starts in about a minute, then ~15 s a full-size inference, "
                      f"{COUNTED_INFERENCES} a job", "dim")
            self.bar.update(self.task, description=f"{phase}: {job.backend}")
            return
        what = {"prepare": "preparing (export / compile unless cached)",
                "prepare+measure": "preparing and timing"}.get(phase, f"{phase}: timing")
        eta = f" · ETA {duration(self.eta.seconds())}" if self.eta else ""
        self.bar.update(self.task, description=f"{what} {job.model} · {job.backend} · {job.precision}{eta}")

    def step_done(self, job: Job, phase: str, seconds: float, p50_ns: float | None, notes: list[str]) -> None:
        if phase.startswith(COUNT_PHASE):
            self.line(f"  · {phase}: done in {duration(round(seconds))}", "dim")
            return
        if self.eta:
            self.eta.done(phase, seconds)
        for note in notes:
            busy = note.startswith("machine busy")
            if busy and phase == "prepare+measure":
                continue  # the job's own line follows at once, with the same reason
            self.line(f"  {'!' if busy else '·'} {job.model} · {job.backend}: {note}", "yellow" if busy else "dim")

    def job_done(self, job: Job, record: Record, resumed: bool) -> None:
        mark = {"ok": "✓", "skipped": "-", "error": "✗"}[record.status]
        if record.ok and (record.unstable or record.parity_failed):
            mark = "~"
        style = {"✓": "", "~": "yellow", "-": "dim", "✗": "red"}[mark]
        self.line(f"{mark} {key_label(job.as_dict())}: {figure(record)}" + ("  (earlier attempt)" if resumed else ""),
                  style)
        if self.task is not None and not resumed:
            self.bar.advance(self.task)


class JsonSweep(SweepListener):
    """One JSON object per line and event (plan, step, job), for CI logs and scripts."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def emit(self, event: str, **fields: Any) -> None:
        self.console.print(json.dumps({"event": event, "t": round(time.time(), 3), **fields}, allow_nan=False),
                           markup=False, highlight=False, soft_wrap=True)

    def planned(self, plan: SweepPlan) -> None:
        self.emit("plan", jobs=plan.jobs, resumed=plan.resumed, prepare_steps=plan.prepare_steps,
                  measure_steps=plan.measure_steps, max_measure_steps=plan.max_measure_steps,
                  processes=plan.processes, estimate_s=round(plan.estimate_s, 1), machine=machine_state())

    def step_started(self, job: Job, phase: str) -> None:
        self.emit("step", job_id=job.id, phase=phase)

    def step_done(self, job: Job, phase: str, seconds: float, p50_ns: float | None, notes: list[str]) -> None:
        self.emit("step_done", job_id=job.id, phase=phase, seconds=round(seconds, 3),
                  p50_ms=None if p50_ns is None else p50_ns / 1e6, notes=notes)

    def job_done(self, job: Job, record: Record, resumed: bool) -> None:
        s = record.stats
        self.emit("job", job_id=job.id, status=record.status.value, resumed=resumed, p50_ms=s and s.p50_ms,
                  ci_ms=s and s.ci_ms and list(s.ci_ms), unstable=record.unstable, message=record.message or None)


class StatusLine(SweepListener):
    """For the commands that run a sweep as one step of their own (ablation, nightly): one status line."""

    def __init__(self, status: Any, what: str) -> None:
        self.status, self.what = status, what

    def step_started(self, job: Job, phase: str) -> None:
        self.status.update(f"{self.what}: {phase} · {job.model} · {job.backend}")


def summary(records: list[Record], seconds: float) -> str:
    """The one line a sweep ends with (its folder follows it)."""
    count = {k: sum(r.status == k for r in records) for k in ("ok", "skipped", "error")}
    unstable = sum(r.ok and r.unstable for r in records)
    return (f"done in {duration(seconds)}: {count['ok']} measured" + (f" ({unstable} unstable)" if unstable else "")
            + f", {count['skipped']} skipped, {count['error']} errors")
