"""The sweep driver: plans nothing, runs every job in fresh processes through a launcher, writes one record per job.

Each repeat of a job is a new process; where it runs is the launcher's business (`harness.measure.launch`:
this machine's fork server, or a Ray cluster's node that holds the job's device). A crash (segfault in a
native runtime), a hang (killed at the timeout) or an exception becomes that job's `error` record, and
the sweep goes on. The driver keeps the rounds, the adaptive repeats and resume: finished jobs are
skipped when a sweep is re-run into the same folder, an interrupted one goes on from its processes.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT
from harness.errors import HarnessError
from harness.host import environment, neighbours
from harness.measure import counted, recording, trust, windows
from harness.measure.inputs import Inputs, Stores
from harness.measure.jobs import Job
from harness.measure.launch import (
    MEASURE,
    ON_DEVICE,
    PREPARE,
    PREPARE_AND_MEASURE,
    Launcher,
    LocalLauncher,
    Placed,
    Step,
)
from harness.measure.outcomes import Done, Failed, Lost, Skipped
from harness.measure.payload import CountPayload, JobPayload
from harness.measure.peak import peaks
from harness.measure.protocol import ProtocolConfig
from harness.measure.recording import RunContext, calibration_of, ensure_writable, make_record
from harness.measure.stats import pool_processes
from harness.store import records
from harness.store import runs as store
from harness.store.record import Record, Status, load_record, records_of
from harness.store.records import machine_of
from harness.store.runs import default_cache_dir

# cold-start fields that mean an artifact was built in that process, and what to call them
BUILD_STEPS = {"export_s": "export", "convert_s": "convert", "compile_s": "compile"}
PRIOR_START_S = 1.0  # a process's start, model build and artifact load, before anything is learned
RESTARTS = 1  # a job whose node was lost starts again this many times on another node that can run it


class Phase(Enum):
    """What a step of a job does (its listener label says which round, for a measuring step)."""

    PREPARE = "prepare"  # export, compile, parity: round 0
    PREPARE_AND_MEASURE = "prepare+measure"  # a one-process job (or a phone's), in one step
    MEASURE = "measure"  # one timed process of a round


TARGETS = {Phase.PREPARE: PREPARE, Phase.PREPARE_AND_MEASURE: PREPARE_AND_MEASURE, Phase.MEASURE: MEASURE}


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep is about to do, said before it starts (`bench run`'s plan line)."""

    jobs: int
    resumed: int  # finished in an earlier attempt of this run folder: not run again
    prepare_steps: int  # round 0: build or load the artifact, first inference, parity
    measure_steps: int  # timed processes before any extra round
    max_measure_steps: int  # with every extra round the protocol allows
    processes: str  # per job: "1", or "3-6" (adaptive)
    prior_prepare_s: float  # a preparation's duration before one is seen (the artifact already built)
    prior_measure_s: float  # a timed process's, from the protocol's bounds

    @property
    def estimate_s(self) -> float:
        """A lower bound: artifacts to build add their export / compile time on top."""
        return self.prepare_steps * self.prior_prepare_s + self.measure_steps * self.prior_measure_s


class SweepListener:
    """What a sweep tells its caller as it goes (`bench run` prints it, `--json-progress` streams it);
    every method is a no-op here, so a caller overrides only what it shows."""

    def planned(self, plan: SweepPlan) -> None:
        """Once, before the first process."""

    def step_started(self, job: Job, phase: str) -> None:
        """A process starts: `phase` is "prepare", "prepare+measure" or "round 2/3" / "extra round 1/3"."""

    def step_done(self, job: Job, phase: str, seconds: float, p50_ns: float | None, notes: list[str]) -> None:
        """It ended: `p50_ns` is the p50 of the process it timed (None when it timed none), `notes` what
        it built and how long that took, or why the machine looked busy."""

    def job_done(self, job: Job, record: Record, resumed: bool) -> None:
        """A job's record is written (`resumed`: read back from an earlier attempt of the run)."""


@dataclass
class JobState:
    """A job between rounds: what its prepare step found, the processes measured so far, and where they
    ran (`node`, `host`: None on this machine; a cluster job stays on the node that prepared it)."""

    job: Job
    prepared: dict[str, Any] | None = None
    processes: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None  # set once the job is finished (ok, skipped or error)
    node: str | None = None
    host: dict[str, Any] | None = None
    restarts: int = 0

    def restart(self) -> None:
        """Its node was lost: start again from preparation (figures from two machines never pool)."""
        self.prepared, self.processes, self.node, self.host = None, [], None, None
        self.restarts += 1


def _payload(run: RunContext, job: Job) -> JobPayload:
    return JobPayload.of_job(job, run.cache_dir, protocol=run.cfg, weights=run.weights,
                             calibration=calibration_of(run, job))


def apply_outcome(run: RunContext, st: JobState, target: str, placed: Placed) -> None:
    """What a step's process returned, into the job's state: processes, its preparation, or its finished record."""
    outcome, job = placed.outcome, st.job
    if placed.node is not None:
        st.node, st.host = placed.node, placed.host or st.host
    if isinstance(outcome, (Failed, Lost)):
        where = "prepare" if target in (PREPARE, PREPARE_AND_MEASURE, ON_DEVICE) else f"process {len(st.processes)}"
        st.record = make_record(run, job, "error", f"{where}: {outcome.message}", st.processes, st.prepared,
                                detail=getattr(outcome, "detail", ""), host=st.host)
        return
    if isinstance(outcome, Skipped):  # prepared (converted, checked) or refused where it landed: it cannot be timed there
        st.record = make_record(run, job, "skipped", outcome.reason, host=st.host)
        prepared = outcome.prepared
        st.record.update({k: prepared[k] for k in ("artifact", "backend_info", "model_info", "cold_start") if k in prepared})
        return
    result = outcome.result
    if target == PREPARE:
        st.prepared = result
    elif target == MEASURE:
        st.processes.append(result)
    elif target == ON_DEVICE:  # the device runner timed every process of the job, on the phone
        st.prepared, st.processes = result["prepared"], list(result["processes"])
        attached = f" (on {st.host['machine']})" if st.host and st.host.get("machine") else ""
        st.host = {**result["host"], "machine": f"{result['host']['hostname']}{attached}"}
    else:  # one process that prepared and measured: its result holds the prepared state
        st.prepared = result.pop("prepared")
        st.processes.append(result)


def recheck_probes(run: RunContext, untouched: frozenset[str] = frozenset()) -> None:
    """After the sweep, when the run's best machine probe is known: mark jobs measured while the
    machine was slower than that. Each machine of a cluster run is judged against its own best. Records in
    `untouched` (finished in an earlier attempt of the run) count towards the best but are never rewritten."""
    best: dict[tuple[str, str], float] = {}
    for rec in run.records:
        if rec.ok:
            for kind, value in trust.job_probes(rec.processes).items():
                key = (machine_of(rec.host), kind)
                best[key] = min(value, best.get(key, value))
    for i, rec in enumerate(run.records):
        if not rec.ok or rec.job_id in untouched:
            continue
        own = {kind: value for (machine, kind), value in best.items() if machine == machine_of(rec.host)}
        kept = [r for r in rec.unstable_reasons if not r.startswith("machine probe")]
        reasons = kept + trust.probe_reasons(trust.job_probes(rec.processes), own)
        if tuple(reasons) != rec.unstable_reasons:
            run.records[i] = recording.rewrite(run, rec.revised(unstable_reasons=reasons, unstable=bool(reasons)))


def repeak(run: RunContext, jobs: list[Job], untouched: frozenset[str] = frozenset()) -> None:
    """Measure the GEMM peak again after the sweep and keep the higher of the two: on a shared host the
    machine's speed moves in steps, and one probe at the start may have caught a slow stretch (seen here:
    63 GFLOP/s at a sweep's start, 84 on the quiet machine). Records whose share changes are rewritten, except
    `untouched` ones (finished in an earlier attempt of the run: "already done" leaves a record as it was)."""
    again, source = peaks(jobs, run.cache_dir)
    before = run.host.get("peak_gflops") or {}
    best = {k: max(v, before.get(k, 0.0)) for k, v in again.items()}
    run.host["peak_source"] = {**(run.host.get("peak_source") or {}), **{k: s for k, s in source.items() if again[k] >= before.get(k, 0.0)}}
    for i, rec in enumerate(run.records):
        if not rec.ok or rec.stats is None or rec.job_id in untouched:
            continue
        host = {**rec.host, "peak_gflops": {**(rec.host.get("peak_gflops") or {}), **best}, "peak_source": run.host["peak_source"]}
        stats = {k: v for k, v in rec.document["stats"].items() if k not in ("gflops", "peak_share")}
        stats.update(recording.efficiency(rec.revised(host=host)))  # a share past the new peak is dropped
        if stats != rec.document["stats"]:
            run.records[i] = recording.rewrite(run, rec.revised(host=host, stats=stats))
    run.host["peak_gflops"] = best


def _partial_path(run: RunContext, job: Job) -> Path:
    return run.out_dir / "partial" / f"{job.id}.json"


def _save_partial(run: RunContext, st: JobState) -> None:
    records.atomic_write_text(_partial_path(run, st.job), store.dumps(
        {"settings": _settings(run, st.job), "prepared": st.prepared, "processes": st.processes,
         "node": st.node, "host": st.host}))


def _settings(run: RunContext, job: Job) -> dict[str, Any]:
    """What a stored measurement must share with this run to be reused on resume (libraries compared by
    release: `environment.library_differences`)."""
    return {"protocol": run.cfg.as_dict(), "weights": run.weights_id,
            "libraries": run.host.get("libraries"), "python": run.host.get("python"),
            "calibration": getattr(calibration_of(run, job), "sha256", None)}


def _stored_settings(rec: dict[str, Any]) -> dict[str, Any]:
    return {"protocol": rec.get("protocol"), "weights": rec.get("weights"),
            "libraries": (rec.get("host") or {}).get("libraries"), "python": (rec.get("host") or {}).get("python"),
            "calibration": (rec.get("calibration") or {}).get("sha256")}


def _differing(wanted: dict[str, Any], stored: dict[str, Any]) -> str:
    def same(key: str) -> bool:
        if key == "libraries":
            return not environment.library_differences(wanted[key], stored[key])
        if key == "python":
            return str(wanted[key]).rsplit(".", 1)[0] == str(stored[key]).rsplit(".", 1)[0]  # 3.11.x
        return wanted[key] == stored[key]
    return ", ".join(k for k in wanted if not same(k))


def _load_state(run: RunContext, job: Job, launcher: Launcher) -> tuple[JobState, str]:
    """A job's finished record, or its partial state from an interrupted sweep, when it was made with
    this run's protocol, weights (by content) and library releases; else a fresh state and what differed.
    A partial state from a cluster node that is gone starts again (figures from two machines never pool)."""
    st = JobState(job)
    wanted = _settings(run, job)
    path = run.record_path(job.id)
    differs = ""
    if path.exists():
        try:
            done = load_record(path)
        except HarnessError:
            done = None
        if done and done.status in (Status.OK, Status.SKIPPED):
            differs = _differing(wanted, _stored_settings(done.document))
            if not differs:
                st.record = done.as_document()
                return st, ""
    partial = _partial_path(run, job)
    if partial.exists():
        try:
            data = records.read_json(partial)
        except HarnessError:
            return st, differs
        if isinstance(data, dict) and not _differing(wanted, data.get("settings") or {k: None for k in wanted}):
            if data.get("node") is None or not launcher.lost(data["node"]):
                st.prepared, st.processes = data.get("prepared"), list(data.get("processes") or [])
                st.node, st.host = data.get("node"), data.get("host")
    return st, differs


def _pooled(st: JobState, cfg: ProtocolConfig) -> dict[str, Any]:
    return pool_processes(st.processes, st.job.batch, cfg.window_s).as_dict()


def _rel_ci(st: JobState, cfg: ProtocolConfig) -> float:
    """Half-width of the job's CI relative to its figure, so far."""
    s = _pooled(st, cfg)
    return windows.rel_halfwidth(s["p50"], s["ci_low"], s["ci_high"])


def wanting_more(states: list[JobState], cfg: ProtocolConfig) -> list[JobState]:
    """Adaptive repeats: jobs whose figure is not pinned down yet (CI wider than twice the target) and
    whose bound allows another process, the least certain first."""
    open_jobs = [st for st in states
                 if st.record is None and cfg.repeats <= len(st.processes) < cfg.max_repeats]
    widths = [(_rel_ci(st, cfg), i) for i, st in enumerate(open_jobs)]
    return [open_jobs[i] for w, i in sorted(widths, reverse=True) if w > 2 * cfg.target_rel_ci]


def step_notes(st: JobState, phase: str, seen: int, host: dict[str, Any]) -> list[str]:
    """What a finished process is worth saying: what its preparation built or compiled (and how long that
    took), and signs that the machine was busy while it was timed (said during the sweep, not afterwards)."""
    notes = []
    cold = ((st.prepared or {}).get("cold_start") or {}) if phase.startswith("prepare") else {}
    built = {k: v for k, v in cold.items() if k in BUILD_STEPS and v and v >= 0.05}
    if built:
        notes.append("built " + ", ".join(f"{BUILD_STEPS[k]} {v:.1f} s" for k, v in built.items()))
    fresh = st.processes[seen:]
    if fresh:
        from harness.host.machine import disturbances

        notes += [f"machine busy: {reason.split(': ', 1)[-1]}" for reason in disturbances(fresh, host["cpu"]["logical_cores"])]
    if st.host and st.host.get("machine"):
        notes.append(f"on {st.host['machine']}")
    return notes


def run_sweep(jobs: list[Job], cfg: ProtocolConfig, out_dir: Path, *, inputs: Inputs = Inputs(),
              stores: Stores = Stores(), listener: SweepListener | None = None, say: Callable[[str], None] | None = None,
              neighbour_wait_s: float | None = None, launcher: Launcher | None = None) -> list[dict[str, Any]]:
    """Run `jobs` under `cfg` into `out_dir` in rounds; return their records (finished ones re-read on resume).

    Round 0 prepares every job (artifact, parity); rounds 1..repeats each time one process of every
    job in a shuffled order, so a slow stretch of a shared machine touches many jobs once rather than
    one job every time (randomized multiple interleaved trials, Abedi & Brecht 2017); then jobs whose
    figure is not pinned down get more rounds, up to `cfg.max_repeats`. On resume, a finished record or
    an interrupted job's processes are reused only under the same protocol (and weights). `neighbour_wait_s`
    (None: no check) bounds the wait for other busy processes to stop before round 1. `inputs` holds the
    weights and each int8 model's calibration set, `stores` the artifact cache and the index. `launcher` says where processes run (default: this machine, one at a time).
    """
    ensure_writable(out_dir)
    with store.locked(out_dir):  # one sweep writes a run folder at a time
        own = launcher is None
        launcher = launcher or LocalLauncher(sorted({j.backend for j in jobs}))
        try:
            return Sweep(jobs, cfg, out_dir, inputs, stores, listener or SweepListener(),
                         say or (lambda _: None), launcher).run(neighbour_wait_s)
        finally:
            if own:
                launcher.close()


class Sweep:
    """One sweep's state: the run folder, the jobs' states, the launcher, and the rounds that fill them."""

    def __init__(self, jobs: list[Job], cfg: ProtocolConfig, out_dir: Path, inputs: Inputs, stores: Stores,
                 listener: SweepListener, say: Callable[[str], None], launcher: Launcher) -> None:
        from harness.measure.calibration import for_jobs

        self.jobs, self.cfg, self.listener, self.say, self.launcher = jobs, cfg, listener, say, launcher
        calibration = inputs.calibration if inputs.calibration is not None else for_jobs(jobs, None, None)
        self.run_ctx = RunContext(out_dir.name, out_dir, environment.capture(), cfg, stores.cache_dir or default_cache_dir(),
                                  inputs.weights, stores.index_db, calibration, say=say)
        self.local = not launcher.remote
        if self.local:  # a cluster node measures its own peak for the jobs it times
            self.run_ctx.host["peak_gflops"], self.run_ctx.host["peak_source"] = peaks(jobs, self.run_ctx.cache_dir)
        self.neighbour: str | None = None
        self.single = cfg.max_repeats == 1  # one process a job: no rounds, so it prepares and measures at once
        self.states: list[JobState] = []

    def run(self, neighbour_wait_s: float | None) -> list[dict[str, Any]]:
        run, cfg, out_dir = self.run_ctx, self.cfg, self.run_ctx.out_dir
        loaded = [_load_state(run, job, self.launcher) for job in self.jobs]
        self.states = states = [st for st, _ in loaded]
        stale = [f"{st.job.id} ({why})" for st, why in loaded if why]
        if stale:
            self.say(f"measuring {len(stale)} job(s) again: their records in {out_dir} were made with another "
                     f"protocol, weights or library versions: {'; '.join(stale[:5])}{' …' if len(stale) > 5 else ''}")
        if neighbour_wait_s is not None and self.local and any(st.record is None for st in states):
            self.neighbour = neighbours.wait_for_quiet(neighbour_wait_s, self.say)
        if not (out_dir / "run.json").exists() or self.neighbour:
            self.write_run_json()
        open_states = [st for st in states if st.record is None]
        self.resumed = frozenset(st.job.id for st in states if st.record is not None)
        self.listener.planned(SweepPlan(
            jobs=len(states), resumed=len(states) - len(open_states),
            prepare_steps=0 if self.single else sum(st.prepared is None for st in open_states),
            measure_steps=sum(max(0, cfg.repeats - len(st.processes)) for st in open_states),
            max_measure_steps=sum(max(0, cfg.max_repeats - len(st.processes)) for st in open_states),
            processes=str(cfg.repeats) if cfg.repeats == cfg.max_repeats else f"{cfg.repeats}-{cfg.max_repeats}",
            prior_prepare_s=PRIOR_START_S + 1.0, prior_measure_s=PRIOR_START_S + cfg.warmup_max_s + cfg.max_s))
        for st in states:
            if st.record is not None:
                self.listener.job_done(st.job, Record.of(st.record), resumed=True)
        for st in open_states:
            if st.prepared is None:
                reason = self.launcher.cannot_run(st.job)
                if reason:
                    st.record = make_record(run, st.job, "skipped", reason)
                    self.finish(st)
        self.steps([(st, self.first_phase(st), self.first_phase(st).value) for st in states
                    if st.record is None and st.prepared is None])
        rng = random.Random(run.run_id)
        for r in range(cfg.repeats):
            self.round(f"round {r + 1}/{cfg.repeats}",
                       [st for st in states if st.record is None and len(st.processes) <= r], rng)
        extra_rounds = cfg.max_repeats - cfg.repeats
        for extra in range(1, extra_rounds + 1):
            # at most a third of the sweep's jobs per extra round, the least certain first: time goes where
            # the uncertainty is, and a machine too noisy for every job cannot double the sweep
            todo = wanting_more(states, cfg)
            if not todo:
                break
            self.round(f"extra round {extra}/{extra_rounds} (figures not yet within ±{2 * cfg.target_rel_ci:.0%})",
                       todo[:max(1, (len(states) + 2) // 3)], rng)
        while behind := [st for st in states if st.record is None and len(st.processes) < cfg.repeats]:
            self.round("catch-up round (a job started again on another node)", behind, rng)
        for st in states:
            if st.record is None:
                self.complete(st)
        if cfg.counted:
            self.count([st for st in states if st.record["status"] == "ok" and "counted" not in st.record])
        run.records = records_of(st.record for st in states)
        recheck_probes(run, self.resumed)
        if self.local:
            repeak(run, self.jobs, self.resumed)
        else:
            self.write_run_json()  # now with every machine that ran a job
        return run.records

    def count(self, todo: list[JobState]) -> None:
        """`--counted`: each measured job's work per inference under callgrind, added to its record as its
        `counted` block. One step per backend (and node): valgrind's start-up is paid once for all of them."""
        groups: dict[tuple[str | None, str], list[JobState]] = {}
        for st in todo:
            if st.job.device != "cpu":
                self.add_count(st, {"missing": f"counted on the CPU only (callgrind simulates a CPU, not {st.job.device})"})
            else:
                groups.setdefault((st.node, st.job.backend), []).append(st)
        for (node, backend), members in groups.items():
            payload = CountPayload(jobs=tuple(_payload(self.run_ctx, st.job) for st in members),
                                   ids=tuple(st.job.id for st in members), project_root=str(PROJECT_ROOT),
                                   timeout_s=counted.STARTUP_S + counted.PER_JOB_S * len(members))
            step = Step(members[0].job, counted.TARGET, payload, payload.timeout_s, node)
            label = f"{counted.PHASE} ({len(members)} {backend} job{'s' if len(members) != 1 else ''})"
            self.listener.step_started(members[0].job, label)
            start = time.perf_counter()
            try:
                outcome = self.launcher.submit(step).result().outcome
            except Exception as exc:  # noqa: BLE001 - a launcher's failure costs the count, never the records
                outcome = Failed(f"the launcher failed: {type(exc).__name__}: {exc}")
            blocks = outcome.result["counted"] if isinstance(outcome, Done) else {}
            why = getattr(outcome, "message", None) or getattr(outcome, "reason", None) or "no result"
            for st in members:
                self.add_count(st, blocks.get(st.job.id) or {"missing": f"the count failed: {why}"})
            self.listener.step_done(members[0].job, label, time.perf_counter() - start, None, [])

    def add_count(self, st: JobState, block: dict[str, Any]) -> None:
        st.record = recording.rewrite(self.run_ctx, Record.of(st.record).revised(counted=block)).as_document()

    def first_phase(self, st: JobState) -> Phase:
        return Phase.PREPARE_AND_MEASURE if self.single or st.job.boundary == "on-device" else Phase.PREPARE

    def write_run_json(self) -> None:
        run = self.run_ctx
        extra: dict[str, Any] = {"neighbour": self.neighbour} if self.neighbour else {}
        if not self.local:
            hosts = {machine_of(st.host): st.host for st in self.states if st.host}
            extra["cluster"] = {"address": getattr(self.launcher, "address", ""),
                                "hosts": [hosts[name] for name in sorted(hosts)]}
        records.write_run_json(run.out_dir, run.run_id, run.host, self.cfg.as_dict(), [j.as_dict() for j in self.jobs],
                               **extra)

    def round(self, label: str, todo: list[JobState], rng: random.Random) -> None:
        if not todo:
            return
        rng.shuffle(todo)
        self.say(f"{label}: {len(todo)} job(s)")
        self.steps([(st, Phase.MEASURE, label.split(" (")[0]) for st in todo])

    def step_for(self, st: JobState, phase: Phase) -> Step:
        target = ON_DEVICE if st.job.boundary == "on-device" else TARGETS[phase]
        return Step(st.job, target, _payload(self.run_ctx, st.job), self.cfg.timeout_s, st.node)

    def steps(self, todo: list[tuple[JobState, Phase, str]]) -> None:
        """Run one step for each (job, phase): as many at once as the launcher takes (one on this machine,
        in the order given), each result applied as it lands."""
        queue, pending = deque(todo), {}
        while queue or pending:
            while queue and len(pending) < self.launcher.concurrency:
                st, phase, label = queue.popleft()
                step = self.step_for(st, phase)
                self.listener.step_started(st.job, label)
                pending[self.launcher.submit(step)] = (st, label, step, len(st.processes), time.perf_counter())
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                st, label, step, seen, start = pending.pop(future)
                try:
                    placed = future.result()
                except Exception as exc:  # noqa: BLE001 - a launcher's failure costs this step's job, not the sweep
                    placed = Placed(Failed(f"the launcher failed: {type(exc).__name__}: {exc}"))
                if isinstance(placed.outcome, Lost):
                    if self.lost(st, placed):
                        queue.append((st, self.first_phase(st), self.first_phase(st).value))
                    continue
                apply_outcome(self.run_ctx, st, step.target, placed)
                timed = st.processes[seen:]
                self.listener.step_done(st.job, label, time.perf_counter() - start,
                                        timed[-1]["summary"]["p50"] if timed else None,
                                        step_notes(st, label, seen, st.host or self.run_ctx.host))
                self.after_step(st)

    def lost(self, st: JobState, placed: Placed) -> bool:
        """The node running the step was lost: the job starts again elsewhere once, else its `error` record."""
        node_line = placed.outcome.message
        if st.restarts < RESTARTS and not self.launcher.cannot_run(st.job):
            self.say(f"{st.job.id}: {node_line}; starting it again on another node")
            st.restart()
            with contextlib.suppress(FileNotFoundError):
                _partial_path(self.run_ctx, st.job).unlink()
            return True
        again = " again" if st.restarts else ""
        st.record = make_record(self.run_ctx, st.job, "error",
                                f"{node_line}{again}, and no other node that can run the job is left", host=st.host)
        self.finish(st)
        return False

    def after_step(self, st: JobState) -> None:
        """The job's record if it is finished, else its partial state."""
        if st.record is None and (self.single or st.job.boundary == "on-device") and st.processes:
            self.complete(st)  # one process a job: its figure is final now, said as it lands
        elif st.record is not None:
            self.finish(st)
        else:
            try:
                _save_partial(self.run_ctx, st)
            except ValueError as exc:  # a non-finite figure in what the process returned
                st.record = make_record(self.run_ctx, st.job, "error", f"{recording.BUG_PREFIX}its state holds a "
                                        f"figure that is not a finite number ({exc})", host=st.host)
                self.finish(st)

    def complete(self, st: JobState) -> None:
        """The job's processes are all in: its record, judged, written."""
        st.record = recording.judged(make_record(self.run_ctx, st.job, "ok", "", st.processes, st.prepared,
                                                 host=st.host), self.cfg)
        if self.neighbour:
            st.record["unstable"] = True
            st.record["unstable_reasons"].append(f"a neighbour was busy when the sweep started: {self.neighbour}")
        self.finish(st)

    def finish(self, st: JobState) -> None:
        st.record = recording.write(self.run_ctx, st.record, keep=lambda: _save_partial(self.run_ctx, st))
        if st.record["status"] != "error" or not st.record["message"].startswith(recording.BUG_PREFIX):
            _partial_path(self.run_ctx, st.job).unlink(missing_ok=True)
        self.listener.job_done(st.job, Record.of(st.record), resumed=False)
