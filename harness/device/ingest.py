"""`bench ingest FILE`: results measured on a device (the iPhone runner) become ordinary run records.

The runner writes raw samples per process and the job keys from the bundle's manifest; statistics,
the CI and the `unstable` verdict are computed here by the same code as every other record, so an
iPhone number is judged like a desktop one. The file is validated first (JSON Schema, job ids match
their keys, samples positive): a bad file is one line of error and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from harness.errors import HarnessError
from harness.measure import recording, windows
from harness.measure.jobs import Job
from harness.measure.protocol import ProtocolConfig
from harness.measure.recording import RunContext, judged, make_record
from harness.measure.stats import summarize
from harness.store import records
from harness.store import runs as store
from harness.store.record import parse_record

FORMAT = "onebench-device-results"
# A sample is one inference in ns: under 1 µs or over 1000 s is not a measurement of a vision backbone.
MIN_SAMPLE_NS, MAX_SAMPLE_NS = 1_000, 10**12
_SAMPLES = {"type": "array", "items": {"type": "integer", "minimum": MIN_SAMPLE_NS, "maximum": MAX_SAMPLE_NS}}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "version", "device", "runner", "protocol", "results"],
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": 1},
        "device": {"type": "object", "required": ["model", "os"],
                   "properties": {"model": {"type": "string", "minLength": 1}, "os": {"type": "string"}}},
        "runner": {"type": "object", "required": ["name", "version", "clock"]},
        "protocol": {"type": "object", "required": ["min_iters", "min_s", "max_s", "target_rel_ci", "repeats"],
                     "properties": {"min_iters": {"type": "integer", "minimum": 1}, "min_s": _POSITIVE,
                                    "max_s": _POSITIVE, "target_rel_ci": _POSITIVE,
                                    "repeats": {"type": "integer", "minimum": 1}}},
        "results": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["job_id", "job", "status", "processes"],
            "properties": {
                "job_id": {"type": "string", "minLength": 1},
                "job": records.SCHEMA["properties"]["job"],
                "status": {"enum": ["ok", "error"]},
                "message": {"type": "string"},
                "package_sha256": {"type": "string"},
                "cold_start": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
                "processes": {"type": "array", "items": {
                    "type": "object", "required": ["samples_ns"],
                    "properties": {"samples_ns": {**_SAMPLES, "minItems": 1}, "warmup_ns": _SAMPLES,
                                   "warmup_converged": {"type": "boolean"}, "stop_reason": {"type": "string"}}}},
            },
            "allOf": [{"if": {"properties": {"status": {"const": "ok"}}},
                       "then": {"properties": {"processes": {"minItems": 1}}}}],
        }},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _check_name(value: Any, where: str, path: Path) -> None:
    """A name that ends up in tables, file names and HTML: printable, one line, no path parts."""
    if not isinstance(value, str):
        return
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or "/" in value or "\\" in value or ".." in value:
        raise HarnessError(f"{path}: {where}: {value[:40]!r} holds a control character or a path part (/, \\, ..); "
                           "a device or job name is one printable line")


def read_results(path: Path) -> dict[str, Any]:
    from model_zoo import get_spec
    from model_zoo.errors import ZooError

    data = records.read_json(path)
    records.check_schema(_VALIDATOR, data, f"{path} is not a valid {FORMAT} file")
    for key in ("model", "name", "os"):
        _check_name(data["device"].get(key), f"device/{key}", path)
    for i, result in enumerate(data["results"]):
        for key in ("model", "backend", "device", "precision"):
            _check_name(result["job"].get(key), f"results/{i}/job/{key}", path)
        try:
            get_spec(result["job"]["model"])
        except ZooError as exc:
            raise HarnessError(f"{path}: results/{i}/job/model: {exc}") from None
    seen: dict[str, int] = {}
    min_iters = data["protocol"]["min_iters"]
    for i, result in enumerate(data["results"]):
        if result["job_id"] in seen:
            raise HarnessError(f"{path}: results/{i}: job {result['job_id']} appears twice (first at results/"
                               f"{seen[result['job_id']]}); one result per job")
        seen[result["job_id"]] = i
        short = [j for j, p in enumerate(result["processes"]) if len(p["samples_ns"]) < min_iters]
        if result["status"] == "ok" and short:
            raise HarnessError(f"{path}: results/{i}/processes/{short[0]}: fewer samples than the protocol's "
                               f"min_iters ({min_iters}); the runner stopped early")
        try:
            job = Job(**result["job"])
        except TypeError as exc:
            raise HarnessError(f"{path}: results/{i}/job has unknown or missing fields ({exc})") from None
        if job.id != result["job_id"]:
            raise HarnessError(f"{path}: results/{i}: job_id {result['job_id']!r} does not match its job ({job.id}); "
                               "the runner must copy both from the bundle's manifest")
    return data


def host_of(data: dict[str, Any]) -> dict[str, Any]:
    device = data["device"]
    return {"cpu": {"model": device["model"], "logical_cores": device.get("cores")}, "os": device["os"],
            "hostname": device.get("name", device["model"]), "device": device, "runner": data["runner"], "project": {}}


def result_processes(result: dict[str, Any], cfg: ProtocolConfig) -> list[dict[str, Any]]:
    """A device result's processes, in the shape a measurement process returns them."""
    return [{"samples_ns": p["samples_ns"], "warmup_ns": p.get("warmup_ns", []),
             "warmup_converged": p.get("warmup_converged", True), "stop_reason": p.get("stop_reason", ""),
             "summary": summarize(p["samples_ns"]).as_dict(), "machine": {},
             "windows": windows.summaries(p["samples_ns"], cfg.window_s)}
            for p in result["processes"]]


def result_prepared(result: dict[str, Any], job: Job, runner: dict[str, Any]) -> dict[str, Any]:
    """What a device result says of the job's preparation (package, cold start), as a prepare step would."""
    return {"cold_start": result.get("cold_start", {}),
            "artifact": {"sha256": result.get("package_sha256", ""), "format": "mlpackage"},
            "backend_info": {"compute_units": job.device, "runner": runner}}


def ingest(path: Path, root: Path) -> Path:
    """Validate `path`, write one record per result into a new run folder under `root`; return the folder."""
    data = read_results(path)
    cfg = ProtocolConfig.from_dict(data["protocol"])
    folder = store.new_run_dir(root, prefix="device-")
    run = RunContext(folder.name, folder, host_of(data), cfg, Path(), index_db=store.default_index(root))
    built = []
    for result in data["results"]:
        job = Job(**result["job"])
        processes, prepared = result_processes(result, cfg), result_prepared(result, job, data["runner"])
        if result["status"] == "ok":
            rec = judged(make_record(run, job, "ok", "", processes, prepared), cfg)
        else:
            rec = make_record(run, job, "error", result.get("message") or "the device runner reported an error",
                              processes, prepared)
        built.append(parse_record(rec, f"{path} ({result['job_id']})"))
    records.write_run_json(folder, run.run_id, run.host, cfg.as_dict(), [r.job.as_dict() for r in built], source=str(path))
    for rec in built:  # every record validated above: a run folder is never left half-written
        recording.write(run, rec.as_document())
    return folder
