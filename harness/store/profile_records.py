"""Profile records: what the runtime's profiler saw of one job, one file per job in a run folder's
`profiles/`, schema-checked on write and on read. Kept apart from the profiling (which needs torch and
the runtimes) so `bench show` and the site read them without importing either."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from harness.errors import HarnessError
from harness.store.job_key import JOB_SCHEMA
from harness.store.records import atomic_write_text, check_schema, read_json

SCHEMA_VERSION = 1
PROFILES_DIR = "profiles"  # inside a run folder, beside records/
_MS = {"type": "number", "minimum": 0}
_ROW = {"type": "object", "required": ["layer", "name", "op", "exec", "kind", "ms", "flops"],
        "properties": {"layer": {"type": "string"}, "name": {"type": "string"}, "op": {"type": "string"},
                       "exec": {"type": "string"}, "kind": {"type": "string"}, "ms": _MS,
                       "flops": {"type": ["integer", "null"], "minimum": 0},
                       "int8": {"type": "boolean", "description": "ran an integer kernel"}}}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "onebench profile record",
    "type": "object",
    "required": ["schema_version", "kind", "created", "job_id", "job", "profiler", "plain", "totals", "rows", "kinds",
                 "artifact", "host"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"const": "profile"},
        "job_id": {"type": "string", "minLength": 1},
        "job": JOB_SCHEMA,
        "profiler": {"type": "object", "required": ["tool", "iterations", "estimated"],
                     "properties": {"iterations": {"type": "integer", "minimum": 1}}},
        "plain": {"type": "object", "required": ["p50_ms", "window_p50_ms", "samples"],
                  "description": "plain timing of the same session, in rounds alternating with the profiled ones"},
        "totals": {"type": "object", "required": ["plain_p50_ms", "profiled_wall_ms", "ops_ms", "overhead",
                                                  "within_tolerance", "why"],
                   "properties": {"plain_p50_ms": {"type": "number", "exclusiveMinimum": 0},
                                  "why": {"type": ["string", "null"]}}},
        "rows": {"type": "array", "minItems": 1, "items": _ROW},
        "kinds": {"type": "array", "items": {"type": "object", "required": ["kind", "ms", "share", "count"]}},
        "artifact": {"type": "object"},
        "host": {"type": "object"},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@dataclass(frozen=True)
class Profiler:
    """Which profiler saw the job and how: its tool, the profiled inferences, whether op times are estimated
    shares of the measured time (a profiler that sees kernels but not their times)."""

    tool: str
    iterations: int
    estimated: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Totals:
    """The profiled inference against the plain p50 of the same session, and what the ops add up to."""

    plain_p50_ms: float
    profiled_wall_ms: float
    ops_ms: float
    overhead: float
    within_tolerance: bool
    why: str | None = None
    coverage: float | None = None  # the ops' share of the profiled time


@dataclass(frozen=True)
class ProfileRecord:
    """A profile record as reports read it, typed; `document` is the file as written (its rows and kinds stay
    tables of columns: `layer`, `op`, `kind`, `ms`, ...)."""

    job_id: str
    job: Mapping[str, Any]
    profiler: Profiler
    totals: Totals
    rows: tuple[Mapping[str, Any], ...]
    kinds: tuple[Mapping[str, Any], ...]
    document: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def quantized(self) -> bool:
        return self.job.get("precision") == "int8"

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> ProfileRecord:
        """The typed view of a profile record (schema-checked where it was read or made)."""
        p, t = doc["profiler"], doc["totals"]
        return cls(job_id=doc["job_id"], job=doc["job"], document=doc,
                   profiler=Profiler(p["tool"], p["iterations"], p["estimated"], tuple(p.get("notes") or ())),
                   totals=Totals(t["plain_p50_ms"], t["profiled_wall_ms"], t["ops_ms"], t["overhead"],
                                 t["within_tolerance"], t.get("why"), t.get("coverage")),
                   rows=tuple(doc["rows"]), kinds=tuple(doc["kinds"]))


def validate(rec: dict[str, Any], source: str) -> None:
    check_schema(_VALIDATOR, rec, f"{source} is not a valid onebench profile record")


def path_of(run_dir: Path, rec: dict[str, Any]) -> Path:
    """One file per job: profiling the same job again replaces its profile."""
    return Path(run_dir) / PROFILES_DIR / f"{rec['job_id']}.json"


def save(run_dir: Path, rec: dict[str, Any]) -> Path:
    path = path_of(run_dir, rec)
    validate(rec, str(path))
    atomic_write_text(path, json.dumps(rec, indent=1, allow_nan=False))
    return path


def read(path: Path) -> ProfileRecord:
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("kind") != "profile":
        raise HarnessError(f"{path} is not an onebench profile record (expected a JSON object of kind 'profile')")
    validate(doc, str(path))
    return ProfileRecord.of(doc)


def load_all(run_dir: Path) -> list[ProfileRecord]:
    """Every profile of a run folder (none is fine)."""
    return [read(p) for p in sorted((Path(run_dir) / PROFILES_DIR).glob("*.json"))]
