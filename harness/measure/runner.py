"""The job runner: plans nothing, runs every job in fresh processes, writes one record per job.

Each repeat of a job is a new process forked from a fork server that has torch imported. A crash
(segfault in a native runtime), a hang (killed at the timeout) or an exception becomes that job's
`error` record, and the sweep goes on. Finished jobs are skipped when a sweep is re-run into the
same folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing as mp
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import registry
from harness.errors import HarnessError
from harness.host import environment, neighbours
from harness.host.machine import peak_key
from harness.measure import trust, windows
from harness.measure.jobs import Job
from harness.measure.parity import describe as describe_parity
from harness.measure.protocol import ProtocolConfig
from harness.measure.stats import pool
from harness.store import records
from harness.store import runs as store
from harness.store.runs import default_cache_dir

# An error record whose message starts so is onebench's own fault (a record it made failed its schema):
# the job is lost, the sweep goes on, and `bench run` exits 4 at the end.
BUG_PREFIX = "onebench bug (please report): "
# cold-start fields that mean an artifact was built in that process, and what to call them
BUILD_STEPS = {"export_s": "export", "convert_s": "convert", "compile_s": "compile"}
PRIOR_START_S = 1.0  # a process's start, model build and artifact load, before anything is learned


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

    def job_done(self, job: Job, record: dict[str, Any], resumed: bool) -> None:
        """A job's record is written (`resumed`: read back from an earlier attempt of the run)."""


def ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"cannot write results to {folder} ({exc.strerror or exc}); pass a writable --out") from None


@dataclass
class RunContext:
    run_id: str
    out_dir: Path
    host: dict[str, Any]
    cfg: ProtocolConfig
    cache_dir: Path
    weights: str | None = None
    index_db: Path | None = None
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> its int8 calibration set
    records: list[dict[str, Any]] = field(default_factory=list)
    weights_id: dict[str, str] | None = field(init=False, default=None)  # the checkpoint by content, hashed once

    def __post_init__(self) -> None:
        self.weights_id = weights_identity(self.weights)


def mp_context(backends: list[str] | tuple[str, ...] = ()) -> mp.context.BaseContext:
    """The fork server, with torch and the runtimes of `backends` imported once (an import that fails
    is skipped by multiprocessing; the process then imports, or reports, it itself). The preload list
    counts only before the interpreter's first fork server starts."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        runtimes = {m for name in backends if name in registry.names() for m in getattr(registry.get(name), "preload", ())}
        ctx.set_forkserver_preload(["harness.measure.worker", *sorted(runtimes)])
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


def run_in_process(ctx: mp.context.BaseContext, payload: dict[str, Any], timeout_s: float,
                   target: str = "harness.measure.worker:measure_process") -> tuple:
    """Run `target(payload)` in a fresh process: ("ok", result) or ("error", message, detail).

    Never raises for what happens in the child: a crash or a hang is an outcome like any other.
    """
    from harness.measure.worker import child_main

    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(target, payload, sender), daemon=True)
    with _START_LOCK, _main_not_rerun():  # `bench prepare` starts processes from several threads
        proc.start()
    sender.close()
    message = None
    try:
        if receiver.poll(timeout_s):
            try:
                message = receiver.recv()
            except EOFError:
                pass
        else:
            proc.kill()
            proc.join(10)
            return ("error", f"timed out after {timeout_s:g} s (hung or too slow); the process was killed", "")
    finally:
        receiver.close()
    proc.join(30)
    if message is None:
        code = proc.exitcode
        if code is not None and code < 0:
            return ("error", f"the process crashed: killed by {signal.Signals(-code).name}", "")
        return ("error", f"the process exited with code {code} before sending a result", "")
    return message


def peaks(jobs: list[Job]) -> dict[str, float]:
    """The machine's GEMM peak for each CPU precision and thread count the sweep uses ("fp32/1t"), once."""
    from harness.host.machine import PEAK_PRECISIONS, peak_gflops

    wanted = sorted({(j.precision, j.threads) for j in jobs if j.device == "cpu" and j.precision in PEAK_PRECISIONS})
    return {peak_key(p, t): round(peak_gflops(t, p), 2) for p, t in wanted}


def efficiency(rec: dict[str, Any]) -> dict[str, float]:
    """GFLOP/s attained (counted MACs x 2 x batch per p50) and its share of the machine's measured peak for
    the job's precision and threads, where both are known."""
    macs, stats = (rec.get("model_info") or {}).get("macs"), rec.get("stats") or {}
    if not macs or not stats.get("p50"):
        return {}
    gflops = 2 * macs * rec["job"]["batch"] / stats["p50"]  # FLOP per ns = GFLOP/s
    out = {"gflops": round(gflops, 3)}
    peak = (rec["host"].get("peak_gflops") or {}).get(peak_key(rec["job"]["precision"], rec["job"]["threads"]))
    if peak and rec["job"]["device"] == "cpu":
        out["peak_share"] = round(gflops / peak, 4)
    return out


def make_record(run: RunContext, job: Job, status: str, message: str, processes: list[dict] | None = None,
                prepared: dict[str, Any] | None = None, detail: str = "") -> dict[str, Any]:
    processes = processes or []
    first = prepared or {}
    rec: dict[str, Any] = {
        "schema_version": records.SCHEMA_VERSION,
        "run_id": run.run_id,
        "job_id": job.id,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "job": job.as_dict(),
        "status": status,
        "message": message,
        "unstable": False,
        "unstable_reasons": [],
        "protocol": run.cfg.as_dict(),
        "host": run.host,
        "weights": run.weights_id,
        "model_info": first.get("model_info"),
        "cold_start": first.get("cold_start", {}),
        "processes": [{k: v for k, v in p.items() if k != "boundary"} for p in processes],
        "stats": pool([p["samples_ns"] for p in processes], job.batch, run.cfg.window_s).as_dict() if processes else None,
        "parity": first.get("parity"),
        "artifact": first.get("artifact", {}),
        "backend_info": first.get("backend_info", {}),
        "backend_config": backend_config(job),
        "calibration": calibration_of(run, job),
        "peak_rss_mb": max((p["peak_rss_mb"] for p in processes if p.get("peak_rss_mb") is not None), default=None),
    }
    if detail:
        rec["backend_info"] = {**rec["backend_info"], "traceback": detail}
    if rec["stats"]:
        rec["stats"].update(efficiency(rec))
    return rec


@dataclass
class JobState:
    """A job between rounds: what its prepare step found and the processes measured so far."""

    job: Job
    prepared: dict[str, Any] | None = None
    processes: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None  # set once the job is finished (ok, skipped or error)


def backend_config(job: Job) -> dict[str, Any]:
    """Every field of the job's backend configuration (defaults included); {} for an unknown backend."""
    try:
        return job.config(registry.get(job.backend)).as_dict()
    except (KeyError, ImportError, ValueError):
        return {}


def calibration_of(run: RunContext, job: Job) -> dict[str, Any] | None:
    """An int8 job's calibration set as its record names it (None for float jobs)."""
    return run.calibration.get(job.model) if job.precision == "int8" else None


def _payload(run: RunContext, job: Job) -> dict[str, Any]:
    return {"job": job.as_dict(), "protocol": run.cfg.as_dict(), "backend_ref": registry.ref(job.backend),
            "cache_dir": str(run.cache_dir), "weights": run.weights,
            "calibration": calibration_of(run, job)}


def cannot_prepare(job: Job) -> str | None:
    """Why `job` cannot even be prepared here (runtime missing, job unsupported), or None."""
    try:
        backend = registry.get(job.backend)
    except KeyError:
        raise HarnessError(f"unknown backend {job.backend!r}; choose from {', '.join(registry.names())}") from None
    avail = backend.availability()
    if not avail.ok and not avail.prepares:
        return f"{avail.reason}; to fix: {avail.install}" if avail.install else avail.reason
    return backend.unsupported(job.spec())


def prepare_job(run: RunContext, st: JobState, mpctx: mp.context.BaseContext,
                target: str = "harness.measure.worker:prepare_process") -> None:
    """Round 0: a job that cannot run here, or fails to build, is finished with its record now."""
    job = st.job
    reason = cannot_prepare(job)
    if reason:
        st.record = make_record(run, job, "skipped", reason)
        return
    outcome = run_in_process(mpctx, _payload(run, job), run.cfg.timeout_s, target=target)
    if outcome[0] != "ok":
        st.record = make_record(run, job, "error", f"prepare: {outcome[1]}", detail=outcome[2])
    elif "skipped" in outcome[1]:  # prepared (converted, checked), but it cannot be timed here
        prepared = outcome[1]
        st.record = make_record(run, job, "skipped", prepared["skipped"])
        st.record.update({k: prepared[k] for k in ("artifact", "backend_info", "model_info", "cold_start")})
    else:
        st.prepared = outcome[1]


def measure_once(run: RunContext, st: JobState, mpctx: mp.context.BaseContext) -> None:
    """One more timed process for the job; an error finishes the job with an `error` record."""
    outcome = run_in_process(mpctx, _payload(run, st.job), run.cfg.timeout_s)
    if outcome[0] != "ok":
        st.record = make_record(run, st.job, "error", f"process {len(st.processes)}: {outcome[1]}", st.processes,
                                st.prepared, detail=outcome[2])
    else:
        st.processes.append(outcome[1])


def prepare_and_measure_once(run: RunContext, st: JobState, mpctx: mp.context.BaseContext) -> None:
    """A one-process job: its availability checks, then one process that prepares and measures."""
    prepare_job(run, st, mpctx, target="harness.measure.worker:prepare_and_measure")
    if st.prepared is not None:  # the process's result, with the prepared state inside it
        process = st.prepared
        st.prepared = process.pop("prepared")
        st.processes.append(process)


def judged(rec: dict[str, Any], cfg: ProtocolConfig) -> dict[str, Any]:
    """Apply the `unstable` rule and the parity verdict to a measured record."""
    reasons = trust.unstable_reasons(rec["processes"], rec["stats"], cfg)
    rec["unstable"], rec["unstable_reasons"] = bool(reasons), reasons
    parity = rec["parity"]
    if parity is not None and not parity["passed"]:
        rec["message"] = f"parity failed: {describe_parity(parity)}"
    return rec


def index(run: RunContext, rec: dict[str, Any], path: Path, say: Callable[[str], None]) -> None:
    """Put a written record into the run's index; after a failure the run goes on without one."""
    if run.index_db:
        warning, usable = store.index_or_warn(run.index_db, rec, path)
        if warning:
            say(warning)
        if not usable:
            run.index_db = None


def recheck_probes(run: RunContext, say: Callable[[str], None]) -> None:
    """After the sweep, when the run's best machine probe is known: mark jobs measured while the
    machine was slower than that (resumed records included; their old probe verdicts are replaced)."""
    measured = [rec for rec in run.records if rec["status"] == "ok"]
    best: dict[str, float] = {}
    for rec in measured:
        for kind, value in trust.job_probes(rec["processes"]).items():
            best[kind] = min(value, best.get(kind, value))
    for rec in measured:
        kept = [r for r in rec["unstable_reasons"] if not r.startswith("machine probe")]
        reasons = kept + trust.probe_reasons(trust.job_probes(rec["processes"]), best)
        if reasons != rec["unstable_reasons"]:
            rec["unstable_reasons"], rec["unstable"] = reasons, bool(reasons)
            path = run.out_dir / "records" / f"{rec['job_id']}.json"
            records.write_record(path, rec)
            index(run, rec, path, say)


def repeak(run: RunContext, jobs: list[Job], say: Callable[[str], None]) -> None:
    """Measure the GEMM peak again after the sweep and keep the higher of the two: on a shared host the
    machine's speed moves in steps, and one probe at the start may have caught a slow stretch (seen here:
    63 GFLOP/s at a sweep's start, 84 on the quiet machine). Records whose share changes are rewritten."""
    again = peaks(jobs)
    best = {k: max(v, (run.host.get("peak_gflops") or {}).get(k, 0.0)) for k, v in again.items()}
    for rec in run.records:
        if rec["status"] != "ok" or not rec.get("stats"):
            continue
        rec["host"] = {**rec["host"], "peak_gflops": {**(rec["host"].get("peak_gflops") or {}), **best}}
        figures = efficiency(rec)
        if any(rec["stats"].get(k) != v for k, v in figures.items()):
            rec["stats"].update(figures)
            path = run.out_dir / "records" / f"{rec['job_id']}.json"
            records.write_record(path, rec)
            index(run, rec, path, say)
    run.host["peak_gflops"] = best


def _partial_path(run: RunContext, job: Job) -> Path:
    return run.out_dir / "partial" / f"{job.id}.json"


def _save_partial(run: RunContext, st: JobState) -> None:
    records.atomic_write_text(_partial_path(run, st.job), store.dumps(
        {"settings": _settings(run, st.job), "prepared": st.prepared, "processes": st.processes}))


def weights_identity(weights: str | None) -> dict[str, str] | None:
    """The checkpoint a run loads, by content: a record made from other weights is never reused."""
    if not weights:
        return None
    from backends.artifact_cache import file_sha256

    path = Path(weights)
    return {"path": str(path), "sha256": file_sha256(path) if path.is_file() else "missing"}


def _settings(run: RunContext, job: Job) -> dict[str, Any]:
    """What a stored measurement must share with this run to be reused on resume."""
    return {"protocol": run.cfg.as_dict(), "weights": run.weights_id,
            "libraries": run.host.get("libraries"), "python": run.host.get("python"),
            "calibration": (calibration_of(run, job) or {}).get("sha256")}


def _stored_settings(rec: dict[str, Any]) -> dict[str, Any]:
    return {"protocol": rec.get("protocol"), "weights": rec.get("weights"),
            "libraries": (rec.get("host") or {}).get("libraries"), "python": (rec.get("host") or {}).get("python"),
            "calibration": (rec.get("calibration") or {}).get("sha256")}


def _load_state(run: RunContext, job: Job, resume: bool) -> tuple[JobState, str]:
    """A job's finished record, or its partial state from an interrupted sweep, when it was made with
    this run's protocol, weights (by content) and library versions; else a fresh state and what differed."""
    st = JobState(job)
    if not resume:
        return st, ""
    wanted = _settings(run, job)
    path = run.out_dir / "records" / f"{job.id}.json"
    differs = ""
    if path.exists():
        try:
            done = records.read_record(path)
        except HarnessError:
            done = None
        if done and done["status"] in ("ok", "skipped"):
            stored = _stored_settings(done)
            differs = ", ".join(k for k in wanted if stored[k] != wanted[k])
            if not differs:
                st.record = done
                return st, ""
    partial = _partial_path(run, job)
    if partial.exists():
        try:
            data = records.read_json(partial)
        except HarnessError:
            return st, differs
        if isinstance(data, dict) and data.get("settings") == wanted:
            st.prepared, st.processes = data.get("prepared"), list(data.get("processes") or [])
    return st, differs


def _pooled(st: JobState, cfg: ProtocolConfig) -> dict[str, Any]:
    return pool([p["samples_ns"] for p in st.processes], st.job.batch, cfg.window_s).as_dict()


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
    return notes


def run_sweep(jobs: list[Job], cfg: ProtocolConfig, out_dir: Path, *, weights: str | None = None,
              cache_dir: Path | None = None, index_db: Path | None = None, resume: bool = True,
              listener: SweepListener | None = None, say: Callable[[str], None] | None = None,
              neighbour_wait_s: float | None = None,
              calibration: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run `jobs` under `cfg` into `out_dir` in rounds; return their records (finished ones re-read on resume).

    Round 0 prepares every job (artifact, parity); rounds 1..repeats each time one process of every
    job in a shuffled order, so a slow stretch of a shared machine touches many jobs once rather than
    one job every time (randomized multiple interleaved trials, Abedi & Brecht 2017); then jobs whose
    figure is not pinned down get more rounds, up to `cfg.max_repeats`. On resume, a finished record or
    an interrupted job's processes are reused only under the same protocol (and weights). `neighbour_wait_s`
    (None: no check) bounds the wait for other busy processes to stop before round 1. `calibration` is
    each int8 model's calibration set (`harness.measure.calibration.for_jobs`; default seeded random).
    """
    ensure_writable(out_dir)
    with store.locked(out_dir):  # one sweep writes a run folder at a time
        return _sweep(jobs, cfg, out_dir, weights, cache_dir, index_db, resume, listener or SweepListener(),
                      say or (lambda _: None), neighbour_wait_s, calibration)


def _sweep(jobs: list[Job], cfg: ProtocolConfig, out_dir: Path, weights: str | None, cache_dir: Path | None,
           index_db: Path | None, resume: bool, listener: SweepListener, say: Callable[[str], None],
           neighbour_wait_s: float | None, calibration: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    from harness.measure.calibration import for_jobs

    records_dir = out_dir / "records"
    run = RunContext(out_dir.name, out_dir, environment.capture(), cfg, cache_dir or default_cache_dir(), weights,
                     index_db, calibration if calibration is not None else for_jobs(jobs, None, None))
    run.host["peak_gflops"] = peaks(jobs)
    loaded = [_load_state(run, job, resume) for job in jobs]
    states = [st for st, _ in loaded]
    stale = [f"{st.job.id} ({why})" for st, why in loaded if why]
    if stale:
        say(f"measuring {len(stale)} job(s) again: their records in {out_dir} were made with another "
            f"protocol, weights or library versions: {'; '.join(stale[:5])}{' …' if len(stale) > 5 else ''}")
    neighbour = None
    if neighbour_wait_s is not None and any(st.record is None for st in states):
        neighbour = neighbours.wait_for_quiet(neighbour_wait_s, say)
    meta = out_dir / "run.json"
    if not meta.exists() or neighbour:
        records.write_run_json(out_dir, run.run_id, run.host, cfg.as_dict(), [j.as_dict() for j in jobs],
                               neighbour=neighbour)
    mpctx = mp_context(sorted({j.backend for j in jobs}))
    rng = random.Random(run.run_id)

    def finish(st: JobState) -> None:
        path = records_dir / f"{st.job.id}.json"
        try:
            records.write_record(path, st.record)
            _partial_path(run, st.job).unlink(missing_ok=True)
        except HarnessError as exc:  # a record the harness made is invalid: a bug, which costs this job only
            with contextlib.suppress(ValueError):  # kept where storable: a resume goes on from them once fixed
                _save_partial(run, st)
            st.record = make_record(run, st.job, "error", f"{BUG_PREFIX}{exc}")
            records.write_record(path, st.record)
        index(run, st.record, path, say)
        listener.job_done(st.job, st.record, resumed=False)

    def complete(st: JobState) -> None:
        """The job's processes are all in: its record, judged, written."""
        st.record = judged(make_record(run, st.job, "ok", "", st.processes, st.prepared), cfg)
        if neighbour:
            st.record["unstable"] = True
            st.record["unstable_reasons"].append(f"a neighbour was busy when the sweep started: {neighbour}")
        finish(st)

    single = cfg.max_repeats == 1  # one process a job: no rounds, so it prepares and measures at once
    open_states = [st for st in states if st.record is None]
    listener.planned(SweepPlan(
        jobs=len(states), resumed=len(states) - len(open_states),
        prepare_steps=0 if single else sum(st.prepared is None for st in open_states),
        measure_steps=sum(max(0, cfg.repeats - len(st.processes)) for st in open_states),
        max_measure_steps=sum(max(0, cfg.max_repeats - len(st.processes)) for st in open_states),
        processes=str(cfg.repeats) if cfg.repeats == cfg.max_repeats else f"{cfg.repeats}-{cfg.max_repeats}",
        prior_prepare_s=PRIOR_START_S + 1.0, prior_measure_s=PRIOR_START_S + cfg.warmup_max_s + cfg.max_s))
    for st in states:
        if st.record is not None:
            listener.job_done(st.job, st.record, resumed=True)

    def step(st: JobState, phase: str, action: Callable[[RunContext, JobState, mp.context.BaseContext], None]) -> None:
        """One process for the job; then its record if it is finished, else its partial state."""
        listener.step_started(st.job, phase)
        seen = len(st.processes)
        start = time.perf_counter()
        action(run, st, mpctx)
        timed = st.processes[seen:]
        listener.step_done(st.job, phase, time.perf_counter() - start,
                           timed[-1]["summary"]["p50"] if timed else None, step_notes(st, phase, seen, run.host))
        if st.record is None and single and st.processes:
            complete(st)  # one process a job: its figure is final now, said as it lands
        elif st.record is not None:
            finish(st)
        else:
            try:
                _save_partial(run, st)
            except ValueError as exc:  # a non-finite figure in what the process returned
                st.record = make_record(run, st.job, "error", f"{BUG_PREFIX}its state holds a figure that is not a finite number ({exc})")
                finish(st)

    for st in states:
        if st.record is None and st.prepared is None:
            step(st, "prepare+measure" if single else "prepare", prepare_and_measure_once if single else prepare_job)

    def one_round(label: str, todo: list[JobState]) -> None:
        rng.shuffle(todo)
        say(f"{label}: {len(todo)} job(s)")
        for st in todo:
            step(st, label.split(" (")[0], measure_once)

    for r in range(cfg.repeats):
        todo = [st for st in states if st.record is None and len(st.processes) <= r]
        if todo:
            one_round(f"round {r + 1}/{cfg.repeats}", todo)
    extra_rounds = cfg.max_repeats - cfg.repeats
    for extra in range(1, extra_rounds + 1):
        # at most a third of the sweep's jobs per extra round, the least certain first: time goes where
        # the uncertainty is, and a machine too noisy for every job cannot double the sweep
        todo = wanting_more(states, cfg)
        if not todo:
            break
        one_round(f"extra round {extra}/{extra_rounds} (figures not yet within ±{2 * cfg.target_rel_ci:.0%})",
                  todo[:max(1, (len(states) + 2) // 3)])
    for st in states:
        if st.record is None:
            complete(st)
    run.records = [st.record for st in states]
    recheck_probes(run, say)
    repeak(run, jobs, say)
    return run.records
