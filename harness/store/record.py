"""The job record as a type: what show, leaderboard, compare, history (through the index) and ingest read.

The JSON Schema in `harness.store.records` stays the file's contract (it is what other tools validate
against, and what a record must pass to be written or read); these frozen dataclasses are the code's view
of a document that passed it. Dataclasses rather than pydantic: a second, pydantic schema would be a second
source of truth for validity, and the free-form blocks (host, backend_info, artifact: each backend's own)
stay mappings either way. `load_record` is the one versioned loader: it refuses a version it does not know,
validates (non-finite figures included), and upgrades an older version to the current shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import HarnessError
from harness.store.job_key import DEFAULTS, KEY_FIELDS, full, job_id, key_label
from harness.store.records import SCHEMA_VERSION, read_json, validate

_EMPTY: Mapping[str, Any] = MappingProxyType({})
STATISTIC_V1 = "median of process medians"  # what schema 1's stats.p50 was


class Status(StrEnum):
    """A job's outcome as its record says it (`harness.measure.outcomes` are the launcher's side of it)."""

    OK = "ok"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class JobKey:
    """The measured job: the key fields (`harness.store.job_key`) and the input size."""

    model: str
    backend: str
    form: str
    device: str
    precision: str
    batch: int
    threads: int
    boundary: str
    layout: str = DEFAULTS["layout"]
    options: str = DEFAULTS["options"]
    input_size: int | None = None

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> JobKey:
        return cls(**full(job), input_size=job.get("input_size"))

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, f) for f in KEY_FIELDS)

    @property
    def label(self) -> str:
        return key_label(self.as_dict())

    @property
    def id(self) -> str:
        return job_id(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        data = {f: getattr(self, f) for f in KEY_FIELDS}
        if self.input_size is not None:
            data["input_size"] = self.input_size
        return data


@dataclass(frozen=True)
class Stats:
    """The job's figures over all its processes, in nanoseconds per batch (throughput: images per second)."""

    p50: float
    p90: float
    ci_low: float | None
    ci_high: float | None
    spread: float
    processes: int
    throughput: float
    p99: float | None = None
    p50_all: float | None = None
    statistic: str | None = None
    min: float | None = None
    n: int | None = None
    outliers: int | None = None
    windows: int | None = None
    windows_set_aside: int | None = None
    set_aside_share: float | None = None
    gflops: float | None = None
    peak_share: float | None = None
    process_p50s: tuple[float, ...] = ()  # each process's figure (older records: `process_medians`)

    @classmethod
    def of(cls, stats: Mapping[str, Any]) -> Stats:
        given = {f.name: stats.get(f.name) for f in fields(cls) if f.name != "process_p50s"}
        return cls(**given, process_p50s=tuple(stats.get("process_p50s") or stats.get("process_medians") or ()))

    @property
    def p50_ms(self) -> float:
        return self.p50 / 1e6

    @property
    def share_of_peak(self) -> float | None:
        """The share of the GEMM peak where it is one (0-100%); None past it (records before #49 stored it)."""
        return self.peak_share if self.peak_share is not None and self.peak_share <= 1 else None

    @property
    def p90_ms(self) -> float:
        return self.p90 / 1e6

    @property
    def ci_ms(self) -> tuple[float, float] | None:
        """The 95% CI of the p50 in ms, when the job timed enough samples for one."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low / 1e6, self.ci_high / 1e6


@dataclass(frozen=True)
class Parity:
    """The deployed outputs against the PyTorch reference's."""

    passed: bool
    cosine: float | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    top1_agreement: float | None = None

    @classmethod
    def of(cls, parity: Mapping[str, Any]) -> Parity:
        return cls(**{f.name: parity.get(f.name) for f in fields(cls)})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Relative:
    """The job's time over a pinned reference's, timed beside it (`harness.measure.relative`)."""

    value: float
    ci_low: float | None
    ci_high: float | None
    pairs: int
    reference: Mapping[str, Any]
    reference_p50_ms: float
    statistic: str

    @classmethod
    def of(cls, rel: Mapping[str, Any]) -> Relative:
        return cls(**{f.name: rel.get(f.name) for f in fields(cls)})

    @property
    def ci(self) -> tuple[float, float] | None:
        return None if self.ci_low is None or self.ci_high is None else (self.ci_low, self.ci_high)


@dataclass(frozen=True)
class Memory:
    """Resident memory the deployment holds and peaks at, above the process's baseline (`harness.host.memory`)."""

    held_mb: float | None
    peak_mb: float | None
    method: str
    baseline_mb: float | None = None
    model_mb: float | None = None
    peak_missing: str | None = None  # why no peak was read (a backend that cannot sample while it runs)

    @classmethod
    def of(cls, mem: Mapping[str, Any]) -> Memory:
        return cls(**{f.name: mem.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Counted:
    """Work per inference counted under callgrind on a fixed simulated CPU (`harness.measure.counted`): never
    milliseconds, never compared with them. `missing` says why a job has no count."""

    instructions: int | None = None
    l1_misses: int | None = None
    ll_misses: int | None = None
    cycles_estimated: int | None = None
    wander: float | None = None
    valgrind: str | None = None
    simulated_cpu: str | None = None
    missing: str | None = None

    @classmethod
    def of(cls, block: Mapping[str, Any]) -> Counted:
        return cls(**{f.name: block.get(f.name) for f in fields(cls)})

    @property
    def identity(self) -> tuple[str | None, str | None]:
        """What two counts must share to be compared: the counter and its simulated CPU."""
        return self.valgrind, self.simulated_cpu


@dataclass(frozen=True)
class Process:
    """One measuring process: its raw samples and what it saw of the machine."""

    samples_ns: tuple[int, ...]
    summary: Mapping[str, Any]
    machine: Mapping[str, Any]
    probe: Mapping[str, float] = field(default_factory=dict)
    windows: tuple[Mapping[str, Any], ...] | None = None
    wait_policy: str | None = None
    peak_rss_mb: float | None = None
    gpu: Mapping[str, Any] | None = None  # the accelerator's clocks and temperature around the process

    @classmethod
    def of(cls, proc: Mapping[str, Any]) -> Process:
        windows = proc.get("windows")
        return cls(tuple(proc["samples_ns"]), proc.get("summary") or _EMPTY, proc.get("machine") or _EMPTY,
                   proc.get("probe") or _EMPTY, None if windows is None else tuple(windows), proc.get("wait_policy"),
                   proc.get("peak_rss_mb"), proc.get("gpu"))


CI_REASONS = ("CI of p50 ±", "too few iterations for a confidence interval")  # how trust.py words a wide CI


@dataclass(frozen=True)
class Record:
    """One job's record. `document` is the JSON object it was read from or will be written as; the typed
    fields are read from it once. Free-form blocks (each backend's or host's own) stay mappings."""

    document: Mapping[str, Any] = field(repr=False)
    schema_version: int
    run_id: str
    job_id: str
    created: str
    job: JobKey
    status: Status
    message: str
    unstable: bool
    unstable_reasons: tuple[str, ...]
    stats: Stats | None
    parity: Parity | None
    relative: Relative | None
    memory: Memory | None
    processes: tuple[Process, ...]
    host: Mapping[str, Any]
    protocol: Mapping[str, Any]
    model_info: Mapping[str, Any]
    cold_start: Mapping[str, float | None]
    artifact: Mapping[str, Any]
    backend_info: Mapping[str, Any]
    calibration: Mapping[str, Any] | None
    speedup: Mapping[str, Any] | None
    energy: Mapping[str, Any] | None
    counted: Counted | None
    peak_rss_mb: float | None

    @property
    def caveats(self) -> tuple[str, ...]:
        """The unstable reasons a reader cannot see in the figure's ± (one process alone at full speed, a busy
        machine, warm-up that never settled): what a leaderboard's `~` marks. A CI wider than its target is
        already said by the ± beside the figure."""
        return tuple(r for r in self.unstable_reasons if not r.startswith(CI_REASONS))

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Record:
        """The typed view of a document onebench made or already validated (`load_record` checks a file's)."""
        if isinstance(doc, Record):
            return doc
        doc = upgraded(doc)

        def typed(name: str, kind: Any) -> Any:
            value = doc.get(name)
            return None if value is None else kind.of(value)

        return cls(
            document=doc, schema_version=doc["schema_version"], run_id=doc["run_id"], job_id=doc["job_id"],
            created=doc["created"], job=JobKey.of(doc["job"]), status=Status(doc["status"]), message=doc["message"],
            unstable=doc["unstable"], unstable_reasons=tuple(doc["unstable_reasons"]),
            stats=typed("stats", Stats), parity=typed("parity", Parity), relative=typed("relative", Relative),
            memory=typed("memory", Memory), processes=tuple(Process.of(p) for p in doc["processes"]),
            host=doc.get("host") or _EMPTY, protocol=doc.get("protocol") or _EMPTY,
            model_info=doc.get("model_info") or _EMPTY, cold_start=doc.get("cold_start") or _EMPTY,
            artifact=doc.get("artifact") or _EMPTY, backend_info=doc.get("backend_info") or _EMPTY,
            calibration=doc.get("calibration"), speedup=doc.get("speedup"), energy=doc.get("energy"),
            counted=typed("counted", Counted), peak_rss_mb=doc.get("peak_rss_mb"))

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def instructions(self) -> int | None:
        """The counted instructions per inference, where the job was counted."""
        return self.counted.instructions if self.counted else None

    @property
    def has_number(self) -> bool:
        """Measured, and its outputs matched the reference where they were checked."""
        return self.ok and (self.parity is None or self.parity.passed)

    @property
    def parity_failed(self) -> bool:
        return self.parity is not None and not self.parity.passed

    @property
    def key(self) -> tuple:
        return self.job.key

    @property
    def artifact_key(self) -> tuple | None:
        """What this record shares with the accuracy record of the file it timed (`join_key`)."""
        return join_key(self.job.as_dict(), self.artifact, self.model_info.get("weights_sha256"))

    def revised(self, **changes: Any) -> Record:
        """The same record with some top-level fields of its document replaced (a verdict made after the sweep)."""
        return Record.of({**self.document, **changes})

    def as_document(self) -> dict[str, Any]:
        """A plain copy of the document, to write or to send."""
        return dict(self.document)

    # Read-only lookups by JSON field, kept one release for library callers written against the dictionaries
    # `run_sweep` and `load_run` returned; onebench's own code reads the typed fields.
    def __getitem__(self, name: str) -> Any:
        return self.document[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.document.get(name, default)


def join_key(job: Mapping[str, Any], artifact: Mapping[str, Any], weights_sha: str | None) -> tuple | None:
    """What a latency record and an accuracy record share when they ran the same file.

    The artifact's hash where the backend runs a file (ONNX, a compiled package), else the weights'
    hash (PyTorch eager); None when neither is known, which joins nothing.
    """
    ident = artifact.get("sha256") or (f"weights:{weights_sha}" if weights_sha else None)
    if ident is None:
        return None
    return (job["model"], job["backend"], job["device"], job["precision"], ident)


def upgraded(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """A document of an older schema version in the current shape. Schema 1 named no statistic: its p50 was
    the median of process medians, and it says so now. (Key fields added since, `layout` and `options`,
    are read at their defaults by `JobKey.of`; the document keeps what was written.)"""
    if doc.get("schema_version") != 1:
        return doc
    out = {**doc, "schema_version": SCHEMA_VERSION}
    if doc.get("stats") and "statistic" not in doc["stats"]:
        out["stats"] = {**doc["stats"], "statistic": STATISTIC_V1}
    return out


def parse_record(doc: Any, source: str) -> Record:
    """A document checked the way every record file is (version, schema, finite figures, figures that follow
    from the samples), as a Record; a one-line HarnessError naming `source` otherwise."""
    if not isinstance(doc, dict):
        raise HarnessError(f"{source} is not an onebench record (expected a JSON object)")
    version = doc.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise HarnessError(f"{source}: record schema {version} is newer than this onebench reads ({SCHEMA_VERSION}); "
                           "upgrade onebench to read it")
    validate(doc, source)
    return Record.of(doc)


def load_record(path: Path) -> Record:
    """The one loader of a record file."""
    return parse_record(read_json(path), str(path))


def records_of(items: Iterable[Record | Mapping[str, Any]]) -> list[Record]:
    """Records as the readers take them: documents made in this process are typed here (not re-validated)."""
    return [Record.of(item) for item in items]


__all__ = ["Counted", "JobKey", "Memory", "join_key", "Parity", "Process", "Record", "Relative", "Stats", "Status", "load_record",
           "parse_record", "records_of", "upgraded"]
