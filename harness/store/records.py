"""Result records: one JSON file per job, validated by a JSON Schema on write and on read.

Writes are atomic (temporary file in the same folder, fsync, rename), so Ctrl-C or kill -9 leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from harness.errors import HarnessError
from harness.store.job_key import JOB_SCHEMA
from model_zoo.names import control_chars, printable

SCHEMA_VERSION = 2  # 2: stats.p50 is the quiet-window p50 (`harness.measure.windows`); 1: the median of process medians
_NUM = {"type": ["number", "null"]}
_NUMBER = {"type": "number"}
# A process's CI of its median is null when it timed fewer samples than a 95% distribution-free CI needs
# (6, `harness.measure.stats.MIN_CI_SAMPLES`); the job's figure and CI come from all its windows.
_NO_CI = {"type": ["number", "null"], "description": "null: fewer than 6 samples, no 95% CI of the median"}
_SUMMARY = {"type": "object", "required": ["n", "min", "p50", "p90", "p99", "ci_low", "ci_high"],
            "properties": {"n": {"type": "integer", "minimum": 0},
                           **{k: _NUMBER for k in ("min", "p50", "p90", "p95", "p99", "mean", "std", "iqr")},
                           "ci_low": _NO_CI, "ci_high": _NO_CI}}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "onebench job record",
    "type": "object",
    "required": ["schema_version", "run_id", "job_id", "created", "job", "status", "message", "unstable",
                 "unstable_reasons", "protocol", "host", "processes", "stats", "parity"],
    "properties": {
        "schema_version": {"enum": [1, SCHEMA_VERSION]},
        "run_id": {"type": "string", "minLength": 1},
        "job_id": {"type": "string", "minLength": 1},
        "created": {"type": "string"},
        "job": JOB_SCHEMA,
        "status": {"enum": ["ok", "skipped", "error"]},
        "message": {"type": "string"},
        "unstable": {"type": "boolean"},
        "unstable_reasons": {"type": "array", "items": {"type": "string"}},
        "protocol": {"type": "object", "required": ["min_iters", "min_s", "max_s", "target_rel_ci", "repeats"]},
        "host": {"type": "object"},
        "model_info": {"type": ["object", "null"], "properties": {"params": {"type": "integer", "minimum": 0},
                                                                  "weights_sha256": {"type": "string"},
                                                                  "macs": {"type": ["integer", "null"], "minimum": 0}}},
        "cold_start": {"type": "object", "additionalProperties": _NUM},
        "processes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["samples_ns", "summary", "machine"],
                "properties": {
                    "samples_ns": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
                    "warmup_ns": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "summary": _SUMMARY,
                    "machine": {"type": "object"},
                    "probe": {"type": "object", "additionalProperties": {"type": "number"}},
                    "peak_rss_mb": _NUM,
                },
            },
        },
        "stats": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["p50", "p90", "ci_low", "ci_high", "spread", "processes", "throughput"],
            "properties": {
                "p50": {"type": "number", "exclusiveMinimum": 0,
                        "description": "the headline figure: since schema 2 the quiet-window p50 named in `statistic`"},
                "p50_all": {"type": "number", "description": "the median of every timed iteration"},
                "statistic": {"type": "string"},
                "windows": {"type": "integer", "minimum": 1},
                "windows_set_aside": {"type": "integer", "minimum": 0},
                "set_aside_share": {"type": "number", "minimum": 0, "maximum": 1},
                **{k: _NUMBER for k in ("p90", "p95", "p99", "min", "mean", "std", "iqr", "spread", "throughput")},
                "gflops": {"type": "number", "minimum": 0},  # counted MACs x 2 x batch / p50
                "peak_share": {"type": "number", "minimum": 0},  # of the host's measured GEMM peak
                "ci_low": _NUM, "ci_high": _NUM, "n": {"type": "integer", "minimum": 1},
                "outliers": {"type": "integer", "minimum": 0}, "processes": {"type": "integer", "minimum": 1},
                "process_p50s": {"type": "array", "items": {"type": "number"}},
                "process_medians": {"type": "array", "items": {"type": "number"}},
            }}]},
        "parity": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["passed", "cosine", "max_abs_err"],
                                                "properties": {"passed": {"type": "boolean"}, "cosine": _NUM,
                                                               "max_abs_err": _NUM, "max_rel_err": _NUM,
                                                               "top1_agreement": _NUM}}]},
        "artifact": {"type": "object"},
        "backend_info": {"type": "object"},
        "backend_config": {"type": "object", "description": "every field of the backend's configuration"},
        "calibration": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["source", "size", "sha256", "meaningful"],
            "description": "an int8 job's calibration inputs; meaningful false: random input, accuracy means nothing"}]},
        "peak_rss_mb": _NUM,
        "memory": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["held_mb", "peak_mb", "method"],
            "description": "resident memory the deployment holds (after open and one inference) and peaks at (during "
                           "the timed inferences), above the process's baseline just before the backend opened it; "
                           "the median over processes (`harness.host.memory`)",
            "properties": {"held_mb": _NUM, "peak_mb": _NUM, "baseline_mb": _NUM, "model_mb": _NUM,
                           "method": {"type": "string", "minLength": 1}}}]},
        "energy": {"anyOf": [{"type": "null"}, {
            "type": "object", "description": "energy per inference from a hardware counter, or why none was read",
            "oneOf": [{"required": ["per_inference_mj", "source"], "properties": {"per_inference_mj": {"type": "number", "minimum": 0}}},
                      {"required": ["missing"], "properties": {"missing": {"type": "string", "minLength": 1}}}]}]},
        "relative": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["value", "ci_low", "ci_high", "pairs", "reference", "reference_p50_ms", "statistic"],
            "description": "the job's time over a pinned reference's, timed beside it window by window "
                           "(`harness.measure.relative`): what history and the nightly track",
            "properties": {"value": {"type": "number", "exclusiveMinimum": 0}, "ci_low": _NUM, "ci_high": _NUM,
                           "pairs": {"type": "integer", "minimum": 3},
                           "reference": {"type": "object", "required": ["name"]},
                           "reference_p50_ms": {"type": "number", "exclusiveMinimum": 0},
                           "statistic": {"type": "string"}}}]},
        "counted": {
            "type": "object", "description": "work per inference counted under callgrind on a fixed simulated CPU "
                                             "(`harness.measure.counted`), or why the job could not be counted",
            "oneOf": [{"required": ["instructions", "l1_misses", "ll_misses", "cycles_estimated", "cycles_formula",
                                    "valgrind", "simulated_cpu", "pins", "wander"],
                       "properties": {"instructions": {"type": "integer", "minimum": 0},
                                      "l1_misses": {"type": "integer"}, "ll_misses": {"type": "integer"},
                                      "cycles_estimated": {"type": "integer", "minimum": 0},
                                      "wander": {"type": "number", "minimum": 0},
                                      "pins": {"type": "object"}, "valgrind": {"type": "string", "minLength": 1}}},
                      {"required": ["missing"], "properties": {"missing": {"type": "string", "minLength": 1}}}]},
        "speedup": {"type": "object", "required": ["ratio", "ci_low", "ci_high", "pairs", "method"],
                    "description": "an int8 record timed in lockstep with its fp32 partner (`bench int8`): fp32/int8"},
    },
    "allOf": [
        {"if": {"properties": {"status": {"const": "ok"}}},
         "then": {"properties": {"stats": {"type": "object"}, "processes": {"minItems": 1}}}},
        {"if": {"properties": {"status": {"enum": ["skipped", "error"]}}},
         "then": {"properties": {"message": {"minLength": 1}}}},
    ],
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def check_schema(validator: jsonschema.protocols.Validator, data: Any, what: str) -> None:
    """The one schema-error message: `{what}: {where in the document}: {jsonschema's best match}`; a NaN or
    infinite number anywhere is an error too."""
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise HarnessError(f"{what}: {where}: {error.message[:200]}")
    where = non_finite(data)
    if where:
        raise HarnessError(f"{what}: {where}: not a finite number (NaN or infinity); every figure must be finite")


def non_finite(data: Any, where: str = "") -> str | None:
    """The path of the first NaN or infinite number in a JSON document, or None. JSON Schema's
    `number` admits them (Python's json reads `NaN` and `Infinity`), so every validator checks this too."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "(top level)"
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = non_finite(value, f"{where}/{key}" if where else str(key))
        if found:
            return found
    return None


def validate(record: dict[str, Any], source: str = "record") -> None:
    """Raise HarnessError naming the first schema violation (non-finite numbers included), or the first
    summary figure that does not follow from the record's raw samples (refused, never recomputed: a record
    edited by hand or corrupted says so rather than showing a figure nobody measured)."""
    check_schema(_VALIDATOR, record, f"{source} is not a valid onebench record")
    named = control_in_names(record)
    if named:
        raise HarnessError(f"{source}: {named}; a record names its job in printable text (edited or forged: measure "
                           "the job again)")
    wrong = stats_disagreement(record)
    if wrong:
        raise HarnessError(f"{source}: its figures do not follow from its samples ({wrong}); the record was edited or "
                           "corrupted: measure the job again")


def control_in_names(rec: dict[str, Any]) -> str | None:
    """Where a record's names (its ids, its job key) hold a control character, or None: they are printed on
    terminals and logs and become file names, so a record that carries an escape sequence is refused."""
    fields = [("run_id", rec.get("run_id")), ("job_id", rec.get("job_id")),
              *((f"job.{k}", v) for k, v in (rec.get("job") or {}).items())]
    for where, value in fields:
        if isinstance(value, str) and control_chars(value):
            return f"{where} holds a control character ({printable(value)[:60]})"
    return None


def stats_disagreement(rec: dict[str, Any]) -> str | None:
    """What in a record's summaries contradicts its raw samples (cheap checks only: counts, extremes, the
    all-iteration median, CIs that hold their figure), or None."""
    import numpy as np

    for i, p in enumerate(rec["processes"]):
        x, summary = p["samples_ns"], p["summary"]
        if summary["n"] != len(x):
            return f"processes/{i}: n {summary['n']} but {len(x)} samples"
        if summary["ci_low"] is not None and not summary["ci_low"] <= summary["p50"] <= summary["ci_high"]:
            return f"processes/{i}: CI {summary['ci_low']:g}-{summary['ci_high']:g} does not hold its p50 {summary['p50']:g}"
    stats = rec.get("stats")
    if not stats or not rec["processes"]:
        return None
    x = np.concatenate([np.asarray(p["samples_ns"], dtype=np.float64) for p in rec["processes"]])
    lo, hi = float(x.min()), float(x.max())
    if not lo <= stats["p50"] <= hi:
        return f"p50 {stats['p50']:g} ns lies outside its samples ({lo:g}-{hi:g} ns)"
    if stats.get("n") is not None and stats["n"] != x.size:
        return f"n {stats['n']} but {x.size} samples"
    if stats.get("min") is not None and not math.isclose(stats["min"], lo, rel_tol=1e-9):
        return f"min {stats['min']:g} ns but the fastest sample took {lo:g} ns"
    if stats.get("p50_all") is not None and not math.isclose(stats["p50_all"], float(np.median(x)), rel_tol=1e-9):
        return f"p50_all {stats['p50_all']:g} ns but the samples' median is {float(np.median(x)):g} ns"
    if stats["ci_low"] is not None and stats["ci_high"] is not None and not stats["ci_low"] <= stats["p50"] <= stats["ci_high"]:
        return f"CI {stats['ci_low']:g}-{stats['ci_high']:g} ns does not hold its p50 {stats['p50']:g} ns"
    return None


RUN_SCHEMA = {
    "type": "object",
    "required": ["run_id", "host", "protocol", "jobs"],
    "additionalProperties": False,
    "properties": {
        "run_id": {"type": "string", "minLength": 1},
        "host": {"type": "object"},
        "protocol": {"type": "object"},
        "jobs": {"type": "array", "items": {"type": "object", "required": ["model", "backend"]}},
        "neighbour": {"type": ["null", "string"]},  # the busy neighbours a sweep met, as it said them
        "lockstep": {"type": "object", "required": ["pairs", "window_s"]},
        "source": {"type": "string"},  # the device results file an ingested run came from
        # a cluster run (`bench run --cluster`): the head's address and the host block of every machine that ran a job
        "cluster": {"type": "object", "required": ["address", "hosts"],
                    "properties": {"address": {"type": "string"}, "hosts": {"type": "array", "items": {"type": "object"}}}},
    },
}
_RUN_VALIDATOR = jsonschema.Draft202012Validator(RUN_SCHEMA)


def machine_of(host: dict[str, Any]) -> str:
    """The machine a host block names: a cluster node's name (its `machine` label), else the hostname."""
    return host.get("machine") or host.get("hostname") or "?"


def write_run_json(folder: Path, run_id: str, host: dict[str, Any], protocol: dict[str, Any],
                   jobs: list[dict[str, Any]], **extra: Any) -> None:
    """The one writer of a run folder's `run.json` (sweeps, lockstep runs, ingested device runs), validated."""
    meta = {"run_id": run_id, "host": host, "protocol": protocol, "jobs": jobs, **extra}
    check_schema(_RUN_VALIDATOR, meta, f"run.json of {run_id} is not valid (a bug)")
    atomic_write_text(folder / "run.json", json.dumps(meta, indent=1, allow_nan=False))


def not_a_file(path: Path) -> str | None:
    """What stands at `path` when it is neither nothing nor a regular file (a folder, a device, a FIFO, a
    socket), else None: an atomic write would rename its temporary file over it (as root, over /dev/null)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                                         (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")) if test(mode)), "not a regular file")


def atomic_write_text(path: Path, text: str) -> None:
    """`text` into `path` whole or not at all; `path` is a new path or a regular file, never replaced when it is
    anything else (the check is repeated here, whoever checked the option before)."""
    path = Path(path)
    what = not_a_file(path)
    if what:
        raise HarnessError(f"{path} is {what}, not a regular file: onebench writes only new paths or regular files")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results and the site must be readable (web servers)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing_folder(target: Path, marker: str, what: str, option: str) -> Iterator[Path]:
    """Build a folder aside and swap it in whole; refuse to replace a folder that is not `what` (one
    without its `marker` file), so a mistyped path never deletes a user's files."""
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / marker).exists())):
        raise HarnessError(f"{target} exists and is not {what}; pass a new or empty folder to {option}")
    import shutil

    staging = target.with_name(target.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if not (staging / marker).exists():
            raise RuntimeError(f"the {what} was built without its {marker}")
        written = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        (staging / WRITTEN).write_text("\n".join(written) + "\n")
        keep_users_files(target, staging, set(written), option)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in(staging, target)


WRITTEN = ".onebench-files"  # in a folder onebench replaces whole: every file it wrote there, one a line


def keep_users_files(target: Path, staging: Path, written: set[str], option: str) -> None:
    """Carry into the new folder every file of the old one that onebench did not write (not in its
    `WRITTEN` list): a user's notes or assets in a site folder outlive a rebuild. One that would be replaced
    by a file of the new build is refused, naming it."""
    import shutil

    if not target.is_dir():
        return
    listed = target / WRITTEN
    ours = set(listed.read_text().splitlines()) if listed.is_file() else set()
    for path in sorted(p for p in target.rglob("*") if p.is_file() or p.is_symlink()):
        name = str(path.relative_to(target))
        if name == WRITTEN or name in ours or (not ours and name in written):
            continue
        if name in written:
            raise HarnessError(f"{option} {target}: {name} is not onebench's, and the new build writes a file there; "
                               "move it and build again")
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, staging / name, follow_symlinks=False)


def swap_in(staging: Path, target: Path) -> None:
    """Replace folder `target` by the finished folder `staging` (old aside, rename, delete old):
    readers see the old folder or the new one, never a half-written one."""
    import shutil

    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_record(path: Path, record: dict[str, Any]) -> None:
    validate(record, str(path))
    atomic_write_text(path, json.dumps(record, separators=(",", ":"), allow_nan=False))


def read_json(path: Path) -> Any:
    """A results file's JSON, or a one-line HarnessError saying why it cannot be read."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path} is not a readable results file ({exc.__class__.__name__}: {str(exc)[:120]})") from None
