"""Building, writing and indexing a run's records: one policy for the sweep, lockstep and device ingest.

A record is made from a job, its status and the processes that timed it (`make_record`), judged by the
`unstable` rule and parity (`judged`), then written (`write`): schema-checked and atomic, and put into
the results index. A record the harness made that fails its schema is onebench's bug; it costs that job
only (an `error` record saying so) and never the run. An index that cannot be written is a cache: the run
goes on without it and says so once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import registry
from backends.calibration import CalibrationSpec
from harness.errors import HarnessError
from harness.host.machine import peak_key
from harness.measure import footprint, relative, trust
from harness.measure.jobs import Job
from harness.measure.parity import describe as describe_parity
from harness.measure.protocol import ProtocolConfig
from harness.measure.stats import pool_processes
from harness.store import records
from harness.store import runs as store
from harness.store.record import Record

# An error record whose message starts so is onebench's own fault (a record it made failed its schema):
# the job is lost, the sweep goes on, and `bench run` exits 4 at the end.
BUG_PREFIX = "onebench bug (please report): "


def ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"cannot write results to {folder} ({exc.strerror or exc}); pass a writable --out") from None


def weights_identity(weights: str | None) -> dict[str, str] | None:
    """The checkpoint a run loads, by content: a record made from other weights is never reused."""
    if not weights:
        return None
    from backends.artifact_cache import file_sha256

    path = Path(weights)
    return {"path": str(path), "sha256": file_sha256(path) if path.is_file() else "missing"}


@dataclass
class RunContext:
    """One run folder being written: its protocol, the host that measured (the driver's; a cluster job's
    record carries its node's), where records and the index go, and how to say a warning."""

    run_id: str
    out_dir: Path
    host: dict[str, Any]
    cfg: ProtocolConfig
    cache_dir: Path
    weights: str | None = None
    index_db: Path | None = None
    calibration: dict[str, CalibrationSpec] = field(default_factory=dict)  # model -> its int8 calibration set
    records: list[Record] = field(default_factory=list)
    say: Callable[[str], None] = lambda _line: None
    weights_id: dict[str, str] | None = field(init=False, default=None)  # the checkpoint by content, hashed once

    def __post_init__(self) -> None:
        self.weights_id = weights_identity(self.weights)

    def record_path(self, job_id: str) -> Path:
        return self.out_dir / "records" / f"{job_id}.json"


def efficiency(rec: Record) -> dict[str, float]:
    """GFLOP/s attained (counted MACs x 2 x batch per p50) and its share of the machine's measured peak for
    the job's precision and threads, where both are known. A job past the peak gets no share: its MACs are
    counted as direct convolutions, and a runtime that does less arithmetic (Winograd) is not 120% efficient."""
    macs, job = rec.model_info.get("macs"), rec.job
    if not macs or rec.stats is None:
        return {}
    gflops = 2 * macs * job.batch / rec.stats.p50  # FLOP per ns = GFLOP/s
    out = {"gflops": round(gflops, 3)}
    peak = (rec.host.get("peak_gflops") or {}).get(peak_key(job.precision, job.threads))
    if peak and job.device == "cpu" and gflops <= peak:
        out["peak_share"] = round(gflops / peak, 4)
    return out


def backend_config(job: Job) -> dict[str, Any]:
    """Every field of the job's backend configuration (defaults included); {} for an unknown backend."""
    try:
        return job.config(registry.get(job.backend)).as_dict()
    except (KeyError, ImportError, ValueError):
        return {}


def calibration_of(run: RunContext, job: Job) -> CalibrationSpec | None:
    """An int8 job's calibration set (None for float jobs)."""
    return run.calibration.get(job.model) if job.precision == "int8" else None


def make_record(run: RunContext, job: Job, status: str, message: str, processes: list[dict] | None = None,
                prepared: dict[str, Any] | None = None, detail: str = "",
                host: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's record; `host` is the machine that timed it where that is not the run's own (a cluster node)."""
    processes = processes or []
    first = prepared or {}
    stats = pool_processes(processes, job.batch, run.cfg.window_s).as_dict() if processes else None
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
        "host": host or run.host,
        "weights": run.weights_id,
        "model_info": first.get("model_info"),
        "cold_start": first.get("cold_start", {}),
        "processes": [{k: v for k, v in p.items() if k != "boundary"} for p in processes],
        "stats": stats,
        "relative": relative.figure(processes),
        "parity": first.get("parity"),
        "artifact": first.get("artifact", {}),
        "backend_info": {**first.get("backend_info", {}), **({"traceback": detail} if detail else {})},
        "backend_config": backend_config(job),
        "calibration": spec.as_dict() if (spec := calibration_of(run, job)) else None,
        "peak_rss_mb": max((p["peak_rss_mb"] for p in processes if p.get("peak_rss_mb") is not None), default=None),
        "memory": footprint.memory_of(processes),
        "energy": footprint.energy_of(processes),
    }
    if stats:
        stats.update(efficiency(Record.of(rec)))
    return rec


def judged(rec: dict[str, Any], cfg: ProtocolConfig) -> dict[str, Any]:
    """Apply the `unstable` rule and the parity verdict to a measured record."""
    view = Record.of(rec)
    cores = (view.host.get("cpu") or {}).get("logical_cores")  # the machine that timed it
    reasons = trust.unstable_reasons(view.document["processes"], view.document["stats"], cfg, cores)
    verdict: dict[str, Any] = {"unstable": bool(reasons), "unstable_reasons": reasons}
    if view.parity_failed:
        verdict["message"] = f"parity failed: {describe_parity(view.document['parity'])}"
    rec.update(verdict)
    return rec


def index(run: RunContext, rec: Record | Mapping[str, Any], path: Path) -> None:
    """Put a written record into the run's index; after a failure the run goes on without one."""
    if run.index_db:
        warning, usable = store.index_or_warn(run.index_db, rec, path)
        if warning:
            run.say(warning)
        if not usable:
            run.index_db = None


def write(run: RunContext, rec: dict[str, Any], keep: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write and index `rec`; return what was written. An invalid record is onebench's bug: the job gets an
    `error` record saying so instead, after `keep` saved what it had (a resume goes on from it once fixed)."""
    view = Record.of(rec)
    path = run.record_path(view.job_id)
    try:
        records.write_record(path, rec)
    except HarnessError as exc:
        if keep:
            with contextlib.suppress(ValueError):  # kept where storable
                keep()
        rec = make_record(run, Job(**view.job.as_dict()), "error", f"{BUG_PREFIX}{exc}", host=dict(view.host))
        records.write_record(path, rec)
    index(run, rec, path)
    return rec


def rewrite(run: RunContext, rec: Record) -> Record:
    """A finished record whose verdict or figures changed after the sweep (probes, peaks): written again."""
    path = run.record_path(rec.job_id)
    records.write_record(path, rec.as_document())
    index(run, rec, path)
    return rec
