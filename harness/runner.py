"""The job runner: plans nothing, runs every job in fresh processes, writes one record per job.

Each repeat of a job is a new process forked from a fork server that has torch imported. A crash
(segfault in a native runtime), a hang (killed at the timeout) or an exception becomes that job's
`error` record, and the sweep goes on. Finished jobs are skipped when a sweep is re-run into the
same folder.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import registry
from harness import environment, records, store, trust
from harness.errors import HarnessError
from harness.jobs import Job
from harness.protocol import ProtocolConfig
from harness.stats import pool

DEFAULT_ROOT = Path("results")
Progress = Callable[[Job, dict[str, Any] | None], None]


def default_cache_dir() -> Path:
    return Path(os.environ.get("ONEBENCH_CACHE", Path.home() / ".cache" / "onebench"))


def new_run_dir(root: Path = DEFAULT_ROOT) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / "runs" / f"{stamp}-{uuid.uuid4().hex[:6]}"


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
    records: list[dict[str, Any]] = field(default_factory=list)


def mp_context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["harness.worker"])
        return ctx
    return mp.get_context("spawn")


def run_in_process(ctx: mp.context.BaseContext, payload: dict[str, Any], timeout_s: float,
                   target: str = "harness.worker:measure_process") -> tuple:
    """Run `target(payload)` in a fresh process: ("ok", result) or ("error", message, detail).

    Never raises for what happens in the child: a crash or a hang is an outcome like any other.
    """
    from harness.worker import child_main

    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(target, payload, sender), daemon=True)
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


def make_record(run: RunContext, job: Job, status: str, message: str, processes: list[dict] | None = None,
            unstable: list[str] | None = None, detail: str = "") -> dict[str, Any]:
    processes = processes or []
    first = processes[0] if processes else {}
    rec: dict[str, Any] = {
        "schema_version": records.SCHEMA_VERSION,
        "run_id": run.run_id,
        "job_id": job.id,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "job": job.as_dict(),
        "status": status,
        "message": message,
        "unstable": bool(unstable),
        "unstable_reasons": unstable or [],
        "protocol": run.cfg.as_dict(),
        "host": run.host,
        "model_info": first.get("model_info"),
        "cold_start": first.get("cold_start", {}),
        "processes": [{k: v for k, v in p.items() if k not in ("parity", "artifact", "backend_info", "model_info",
                                                                "boundary", "libraries")} for p in processes],
        "stats": pool([p["samples_ns"] for p in processes], job.batch).as_dict() if processes else None,
        "parity": first.get("parity"),
        "artifact": first.get("artifact", {}),
        "backend_info": first.get("backend_info", {}),
        "peak_rss_mb": max((p["peak_rss_mb"] for p in processes if p.get("peak_rss_mb") is not None), default=None),
    }
    if detail:
        rec["backend_info"] = {**rec["backend_info"], "traceback": detail}
    return rec


def run_job(run: RunContext, job: Job, mpctx: mp.context.BaseContext) -> dict[str, Any]:
    try:
        backend = registry.get(job.backend)
    except KeyError:
        raise HarnessError(f"unknown backend {job.backend!r}; choose from {', '.join(registry.names())}") from None
    avail = backend.availability()
    if not avail.ok and not avail.prepares:
        fix = f"; to fix: {avail.install}" if avail.install else ""
        return make_record(run, job, "skipped", f"{avail.reason}{fix}")
    reason = backend.unsupported(job.spec())
    if reason:
        return make_record(run, job, "skipped", reason)

    processes = []
    for repeat in range(run.cfg.repeats):
        payload = {"job": job.as_dict(), "protocol": run.cfg.as_dict(), "backend_ref": registry.ref(job.backend),
                   "cache_dir": str(run.cache_dir), "parity": repeat == 0, "weights": run.weights}
        outcome = run_in_process(mpctx, payload, run.cfg.timeout_s)
        if outcome[0] != "ok":
            return make_record(run, job, "error", f"process {repeat}: {outcome[1]}", processes, detail=outcome[2])
        if "skipped" in outcome[1]:  # prepared (converted, checked), but it cannot be timed here
            prepared = outcome[1]
            rec = make_record(run, job, "skipped", prepared["skipped"])
            rec.update({k: prepared[k] for k in ("artifact", "backend_info", "model_info", "cold_start")})
            return rec
        processes.append(outcome[1])
    return judged(make_record(run, job, "ok", "", processes), run.cfg)


def judged(rec: dict[str, Any], cfg: ProtocolConfig) -> dict[str, Any]:
    """Apply the `unstable` rule and the parity verdict to a measured record."""
    reasons = trust.unstable_reasons(rec["processes"], rec["stats"], cfg)
    rec["unstable"], rec["unstable_reasons"] = bool(reasons), reasons
    parity = rec["parity"]
    if parity is not None and not parity["passed"]:
        rec["message"] = f"parity failed: cosine {parity['cosine']:.6f}, max rel err {parity['max_rel_err']:.2e}"
    return rec


def recheck_probes(run: RunContext) -> None:
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
            if run.index_db:
                store.index_record(run.index_db, rec, path)


def run_sweep(jobs: list[Job], cfg: ProtocolConfig, out_dir: Path, *, weights: str | None = None,
              cache_dir: Path | None = None, index_db: Path | None = None, resume: bool = True,
              progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run `jobs` under `cfg` into `out_dir`; return their records (finished ones re-read on resume)."""
    ensure_writable(out_dir)
    records_dir = out_dir / "records"
    run = RunContext(out_dir.name, out_dir, environment.capture(), cfg, cache_dir or default_cache_dir(), weights,
                     index_db)
    meta = out_dir / "run.json"
    if not meta.exists():
        records.atomic_write_text(meta, store.dumps({"run_id": run.run_id, "host": run.host, "protocol": cfg.as_dict(),
                                                     "jobs": [j.as_dict() for j in jobs]}))
    mpctx = mp_context()
    for job in jobs:
        path = records_dir / f"{job.id}.json"
        if resume and path.exists():
            try:
                done = records.read_record(path)
            except HarnessError:
                done = None
            if done and done["status"] in ("ok", "skipped"):
                run.records.append(done)
                if progress:
                    progress(job, done)
                continue
        if progress:
            progress(job, None)
        rec = run_job(run, job, mpctx)
        records.write_record(path, rec)
        if index_db:
            store.index_record(index_db, rec, path)
        run.records.append(rec)
        if progress:
            progress(job, rec)
    recheck_probes(run)
    return run.records
