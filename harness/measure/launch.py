"""Where a measurement process runs: the launcher seam.

The sweep driver (`harness.measure.runner`) keeps the rounds, the adaptive repeats, resume and the
records; a launcher only runs one step of a job (prepare, measure, or both) in an isolated process and
returns its outcome (`harness.measure.outcomes`: Done, Skipped, Failed, or on a cluster Lost). `LocalLauncher` forks each step from
a fork server on this machine, one at a time; `harness.cluster.launcher.RayLauncher` sends it to the
node of a Ray cluster that holds the job's device.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from backends import registry
from harness.errors import HarnessError
from harness.measure.jobs import Job
from harness.measure.outcomes import Failed, Outcome, from_child

PREPARE = "harness.measure.worker:prepare_process"
MEASURE = "harness.measure.worker:measure_process"
PREPARE_AND_MEASURE = "harness.measure.worker:prepare_and_measure"
# an iPhone job: its node exports a bundle, runs the Swift runner on the attached phone, returns every process
ON_DEVICE = "harness.device.on_device:measure_on_device"
ON_DEVICE_BOUNDARY = "on-device"


Progress = Callable[[int, int], None]  # (done, of): what a step's process reports while it works


@dataclass(frozen=True)
class Step:
    """One process of one job: `target` (a worker entry point) on `payload`, where the launcher puts it.
    `node` pins the step to the node that ran the job's earlier steps (None: any that fits); `progress` hears
    what the process reports while it works (`worker.report`; on this machine only)."""

    job: Job
    target: str
    payload: Any  # a `harness.measure.payload` type
    timeout_s: float
    node: str | None = None
    progress: Progress | None = field(default=None, compare=False)


class Launcher(Protocol):
    """Runs steps in isolated processes and says where a job can run."""

    concurrency: int  # steps in flight at once: 1 runs them in the order given
    remote: bool  # steps run on other machines, whose host blocks their records carry (no local peak or neighbours)

    def cannot_run(self, job: Job) -> str | None:
        """Why no place this launcher reaches can run `job` (its `skipped` record's message), or None."""

    def submit(self, step: Step) -> Future:
        """Start the step; the future's result is the outcome plus where it ran (`Placed`)."""

    def lost(self, node: str) -> bool:
        """Whether `node` is gone (a cluster node that died); never for the local machine."""

    def close(self) -> None:
        """Release what the launcher holds (fork server, cluster connection)."""


@dataclass(frozen=True)
class Placed:
    """A step's outcome and where it ran: `node` is None on the local machine, `host` that node's host
    block (None: the driver's own)."""

    outcome: Outcome
    node: str | None = None
    host: dict[str, Any] | None = None


def mp_context(backends: list[str] | tuple[str, ...] = ()) -> mp.context.BaseContext:
    """The fork server, with torch, timm and the runtimes of `backends` imported once (an import that fails
    is skipped by multiprocessing; the process then imports, or reports, it itself). timm is there because
    every process builds its model and the zoo's builders reach it: imported in each process it cost ~3 s
    of every measurement process here (a 4-job default sweep, warm cache, alternating: 152 and 162 s without
    it, 63 and 58 s with). The preload list counts only before the interpreter's first fork server starts."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        runtimes = {m for name in backends if name in registry.names() for m in registry.get(name).preload}
        ctx.set_forkserver_preload(["harness.measure.worker", "timm", *sorted(runtimes)])
        return ctx
    return mp.get_context("spawn")


_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start a child without re-running `__main__` in it. multiprocessing re-executes the parent's main
    script in every forkserver/spawn child (`spawn.get_preparation_data`); for `bench` that re-imports
    the whole CLI, ~0.5 s per measurement process. Our targets live in importable modules, so the
    child needs nothing from `__main__`."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__.pop(k) for k in ("__file__",) if k in main.__dict__}
    spec = getattr(main, "__spec__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        main.__spec__ = spec


def run_in_process(ctx: mp.context.BaseContext, payload: Any, timeout_s: float, target: str = MEASURE,
                   progress: Progress | None = None) -> Outcome:
    """Run `target(payload)` in a fresh process: its outcome, typed (`outcomes.from_child`); what it reports
    on the way (`worker.report`) goes to `progress`.

    Never raises for what happens in the child: a crash or a hang is an outcome like any other.
    """
    from harness.measure.worker import child_main

    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(target, payload, sender), daemon=True)
    with _START_LOCK, _main_not_rerun():  # `bench prepare` starts processes from several threads
        proc.start()
    sender.close()
    message = None
    deadline = time.monotonic() + timeout_s
    try:
        while message is None:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                proc.kill()
                proc.join(10)
                return Failed(f"timed out after {timeout_s:g} s (hung or too slow); the process was killed")
            try:
                message = receiver.recv()
            except EOFError:
                break
            if message[0] == "progress":
                if progress:
                    progress(*message[1:])
                message = None
    finally:
        receiver.close()
    proc.join(30)
    if message is None:
        code = proc.exitcode
        if code is not None and code < 0:
            return Failed(f"the process crashed: killed by {signal.Signals(-code).name}")
        return Failed(f"the process exited with code {code} before sending a result")
    return from_child(message)


def cannot_prepare(job: Job) -> str | None:
    """Why `job` cannot even be prepared on this machine (runtime missing, job unsupported), or None."""
    try:
        backend = registry.get(job.backend)
    except KeyError:
        raise HarnessError(f"unknown backend {job.backend!r}; choose from {', '.join(registry.names())}") from None
    avail = backend.availability()
    if not avail.ok and not avail.prepares:
        return f"{avail.reason}; to fix: {avail.install}" if avail.install else avail.reason
    return registry.unsupported(backend, job.spec())


class LocalLauncher:
    """This machine: each step a fresh process from the fork server, run when submitted (one at a time,
    so nothing else of the sweep runs beside a timed process)."""

    concurrency = 1
    remote = False

    def __init__(self, backends: list[str] | tuple[str, ...] = ()) -> None:
        self.ctx = mp_context(backends)

    def cannot_run(self, job: Job) -> str | None:
        if job.boundary == ON_DEVICE_BOUNDARY:
            return ("an iPhone job runs on the Mac its phone is attached to: `bench run --cluster HEAD` with "
                    "`bench worker` on that Mac, or `bench export --bundle` and `bench ingest`")
        return cannot_prepare(job)

    def submit(self, step: Step) -> Future:
        done: Future = Future()
        done.set_result(Placed(run_in_process(self.ctx, step.payload, step.timeout_s, step.target, step.progress)))
        return done

    def lost(self, node: str) -> bool:
        return False

    def close(self) -> None:
        """The fork server ends with the interpreter."""
