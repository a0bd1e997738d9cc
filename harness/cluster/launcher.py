"""`bench run --cluster`: each step of a job goes to a Ray node that holds the job's device.

The driver decides which nodes may take a job (alive, same onebench and library releases, the job's
device slot, its backend, the `--machine` selectors) and hands Ray their ids; Ray places the step on one of
them once its node slot is free (so one step at a time per node), and every later step of the job is pinned
to the node that prepared it: a record's processes all come from one machine. A node that dies mid-step
comes back as a "lost" outcome naming it; the driver then starts the job again elsewhere once.
"""

from __future__ import annotations

import platform
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from harness import __version__
from harness.cluster import labels as lb
from harness.cluster.address import check_address, check_reachable, host_of, is_loopback, keep_loopback
from harness.cluster.selectors import Selector, matching
from harness.errors import HarnessError
from harness.host import environment
from harness.measure.jobs import Job
from harness.measure.launch import Placed, Step
from harness.measure.outcomes import Failed, Lost

INSTALL = "pip install 'onebench[cluster]'"
POLL_S = 0.5
LIVENESS_S = 2.0  # how often pending steps are checked against dead nodes
# beyond a step's own timeout, what a node may take to start it: a Ray worker, the host capture and GEMM peak,
# a fork server importing the node's runtimes (~20 s on a quiet 2-vCPU node, measured in the device-lab work)
START_BUDGET_S = 120.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HarnessError(f"--cluster needs Ray, which is not installed; to fix: {INSTALL}") from None
    return ray


def connect(address: str, option: str = "--cluster") -> bool:
    """Join the cluster at `address` (given as `option`) as a driver; False when this process was already connected."""
    address = check_address(address, option)
    ray = import_ray()
    if ray.is_initialized():
        return False
    check_reachable(address)
    if is_loopback(host_of(address)):  # a lab on this machine: Ray would go to the interface address instead
        keep_loopback()
    try:
        ray.init(address=address, namespace="onebench", log_to_driver=False, logging_level="ERROR",
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"cannot reach the Ray cluster at {address} ({first}); start its head with "
                           "`bench worker --head` and pass its address (HOST:PORT)") from None
    return True


def onebench_nodes(alive_only: bool = True) -> list[dict[str, Any]]:
    ray = import_ray()
    return [n for n in ray.nodes() if lb.is_onebench_node(n) and (n["Alive"] or not alive_only)]


def refusal(node: dict[str, Any], mine: dict[str, str] | None = None) -> str | None:
    """Why this driver does not use `node`: another onebench or Python release, or other releases of the
    libraries both have (their figures would not be this run's); None when it is usable."""
    theirs = lb.label(node, "onebench")
    if theirs != lb.token(__version__):
        return f"onebench {theirs} there, {__version__} here"
    python = (lb.label(node, "python") or "").rsplit(".", 1)[0]
    here = ".".join(platform.python_version().split(".")[:2])
    if python != here:
        return f"Python {python} there, {here} here"
    mine = mine if mine is not None else {k: lb.token(lb.release(v)) for k, v in environment.library_versions().items()}
    differ = environment.library_differences(mine, lb.node_libraries(node))
    return "; ".join(differ) if differ else None


def name_of(node: dict[str, Any]) -> str:
    return lb.label(node, "machine") or node["NodeID"][:8]


@dataclass
class _Pending:
    future: Future
    step: Step
    candidates: tuple[str, ...]
    node: str | None = None  # the node it was sent to (None: still waiting for one of its candidates to be free)
    deadline: float = 0.0  # time.monotonic() by which the node must have answered


class RayLauncher:
    """Steps sent to the nodes of a Ray cluster, one at a time per node: the driver holds each step until one
    of the nodes that can take it is free, then sends it there, so a step's deadline counts from when it
    could start. A node that does not answer within the step's timeout plus `start_budget_s` (a Ray worker
    and a fork server to start on a busy machine) gets its step cancelled, and the job an `error` record
    naming the node: a busy lab makes a sweep slower, never makes it wait forever."""

    concurrency = 1_000_000  # the runner hands over every step; this launcher queues them per node
    remote = True

    def __init__(self, address: str, selectors: list[Selector] | None = None, say=lambda _line: None,
                 start_budget_s: float = START_BUDGET_S) -> None:
        self.ray = import_ray()
        self.address, self.selectors, self.say, self.start_budget_s = address, selectors or [], say, start_budget_s
        self.own_connection = connect(address)
        self.mine = {k: lb.token(lb.release(v)) for k, v in environment.library_versions().items()}
        self.names: dict[str, str] = {}
        nodes = self.nodes()
        if not nodes:
            self.close()
            raise HarnessError(f"the cluster at {address} has no onebench node; start one on each machine with "
                               f"`bench worker --cluster {address}`")
        for node in nodes:
            why = refusal(node, self.mine)
            if why:
                say(f"not using node {name_of(node)}: {why} (install the same releases there, or run from a matching driver)")
        from harness.cluster.remote import run_step

        self.task = self.ray.remote(num_cpus=0, max_retries=0)(run_step)
        self.waiting: list[_Pending] = []  # in the order submitted
        self.pending: dict[Any, _Pending] = {}  # sent, by Ray object ref
        self.busy: set[str] = set()  # nodes holding a step of this driver
        self.spans: list[tuple[str, str, float, float]] = []  # (node, job id, start, end): when each step held its node
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.monitor = threading.Thread(target=self._watch, name="onebench-cluster", daemon=True)
        self.monitor.start()

    def nodes(self) -> list[dict[str, Any]]:
        """The alive onebench nodes, by name."""
        found = sorted(onebench_nodes(), key=name_of)
        self.names.update({n["NodeID"]: name_of(n) for n in found})
        return found

    def candidates(self, job: Job) -> tuple[list[str], list[str]]:
        """The ids of the nodes that can take `job`, and for each other node why not."""
        device = lb.device_of(job.device, job.backend, job.boundary)
        ok, why = [], []
        for node in self.nodes():
            reasons = [r for r in (
                refusal(node, self.mine),
                None if lb.slot(device) in node["Resources"] else f"no {device} device",
                None if job.backend in lb.node_backends(node) else f"no {job.backend}",
                "; ".join(f"not {s}" for s in matching(node, self.selectors)) or None,
            ) if r]
            if reasons:
                why.append(f"{name_of(node)}: {reasons[0]}")
            else:
                ok.append(node["NodeID"])
        return ok, why

    def offered(self) -> list[str]:
        """The CPU backends the usable nodes have: a cluster sweep's default (as a local one's is this machine's)."""
        from backends import registry

        names = {b for n in self.nodes() if not refusal(n, self.mine) and not matching(n, self.selectors)
                 for b in lb.node_backends(n)}
        return [b for b in registry.names() if b in names and "cpu" in registry.get(b).devices]

    def cannot_run(self, job: Job) -> str | None:
        ok, why = self.candidates(job)
        return None if ok else f"no node of the cluster can run it ({'; '.join(why) or 'no node'})"

    def lost(self, node: str) -> bool:
        return node not in {n["NodeID"] for n in self.nodes()}

    def submit(self, step: Step) -> Future:
        future: Future = Future()
        candidates = (step.node,) if step.node else tuple(self.candidates(step.job)[0])
        if not candidates:
            future.set_result(Placed(Lost("no node that can run it is left")))
            return future
        with self.lock:
            self.waiting.append(_Pending(future, step, candidates))
            self._send_waiting()
        return future

    def _send_waiting(self) -> None:
        """Send each waiting step, in order, to the first of its nodes that is free (under the lock)."""
        for pending in list(self.waiting):
            node = next((n for n in pending.candidates if n not in self.busy), None)
            if node is None:
                continue
            step = pending.step
            device = lb.device_of(step.job.device, step.job.backend, step.job.boundary)
            ref = self.task.options(resources={lb.NODE_SLOT: 1, lb.slot(device): 1},
                                    label_selector={lb.NODE_ID_LABEL: node}).remote(step.target, step.payload, step.timeout_s)
            pending.node, pending.deadline = node, time.monotonic() + step.timeout_s + self.start_budget_s
            self.waiting.remove(pending)
            self.pending[ref] = pending
            self.busy.add(node)

    def _settle(self, ref: Any, placed: Placed | None = None) -> None:
        """A sent step is over (answered, cancelled or lost): its node is free for the next waiting one."""
        with self.lock:
            pending = self.pending.pop(ref, None)
            if pending is None:
                return
            self.busy.discard(pending.node)
        if placed is None:
            self._resolve(ref, pending)
        else:
            pending.future.set_result(placed)
        with self.lock:
            self._send_waiting()

    def _resolve(self, ref: Any, pending: _Pending) -> None:
        try:
            result = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - what the cluster did to the step is its outcome
            pending.future.set_result(self._failed(exc, pending))
            return
        self.spans.append((result["node"], pending.step.job.id, *result["span"]))
        pending.future.set_result(Placed(result["outcome"], result["node"], result["host"]))

    def _failed(self, exc: Exception, pending: _Pending) -> Placed:
        text = str(exc)
        died = re.search(r"node ID: ([0-9a-f]{8,})", text)
        node = died.group(1) if died else pending.node
        if node and self.lost(node) or isinstance(exc, (self.ray.exceptions.NodeDiedError,
                                                         self.ray.exceptions.TaskUnschedulableError)):
            name = self.names.get(node or "", node[:8] if node else "its node")
            return Placed(Lost(f"node {name} was lost mid-job"), node)
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else ""  # a task's own exception is the traceback's last line, not its header
        return Placed(Failed(f"the cluster failed the step ({type(exc).__name__}: {last[:300]})", text[-4000:]), node)

    def _watch(self) -> None:
        """Resolve steps as they finish; cancel a step past its deadline (an `error` naming the node) and one
        whose node died (lost); a waiting step whose every candidate node died is lost."""
        checked = time.monotonic()
        while not self.stopped.is_set():
            with self.lock:
                refs = list(self.pending)
            if not refs:
                self.stopped.wait(POLL_S / 5)
            else:
                ready, _ = self.ray.wait(refs, num_returns=1, timeout=POLL_S)
                if ready:
                    ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
                for ref in ready:
                    self._settle(ref)
            now = time.monotonic()
            with self.lock:
                late = [(r, p) for r, p in self.pending.items() if now > p.deadline]
            for ref, pending in late:
                self.ray.cancel(ref, force=True)
                name = self.names.get(pending.node or "", (pending.node or "")[:8])
                allowed = pending.step.timeout_s + self.start_budget_s
                self._settle(ref, Placed(Failed(f"node {name} did not answer within {allowed:g} s (the step's "
                                                f"{pending.step.timeout_s:g}-s timeout and {self.start_budget_s:g} s to "
                                                "start its process); the step was cancelled"), pending.node))
            if now - checked > LIVENESS_S:
                checked = now
                self._drop_dead()

    def _drop_dead(self) -> None:
        alive = {n["NodeID"] for n in self.nodes()}
        with self.lock:
            sent = [(r, p) for r, p in self.pending.items() if p.node not in alive]
            stranded = [p for p in self.waiting if not alive & set(p.candidates)]
            for pending in stranded:
                self.waiting.remove(pending)
        for ref, pending in sent:
            self.ray.cancel(ref, force=True)
            name = self.names.get(pending.node or "", (pending.node or "")[:8])
            self._settle(ref, Placed(Lost(f"node {name} was lost mid-job"), pending.node))
        for pending in stranded:
            name = self.names.get(pending.candidates[0], pending.candidates[0][:8])
            pending.future.set_result(Placed(Lost(f"node {name} was lost mid-job"), pending.candidates[0]))

    def close(self) -> None:
        stopped = getattr(self, "stopped", None)
        if stopped is not None:
            stopped.set()
            self.monitor.join(5)
        if self.own_connection:
            self.ray.shutdown()
