"""A device bundle: a backend's prepared artifacts (Core ML packages for the iPhone), the protocol's
rules as JSON, and a manifest of jobs.

`bench export --backend coreml --bundle DIR` writes what the Swift runner (`runners/ios`) needs and
nothing it must guess: each job's key and id (so results join leaderboards and comparisons), the
package with its hash, input/output names and shape, and the same `ProtocolConfig` every other
backend is timed under. The weights are the sweep's (seeded, or a checkpoint), so the packages are
the very files `bench run --backend coreml` converts.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import torch

import model_zoo
from backends import registry
from backends.onnx_export import INPUT_NAME, OUTPUT_NAME
from harness import __version__
from harness.errors import HarnessError
from harness.measure import calibration
from harness.measure.jobs import Job
from harness.measure.planner import check_choice, iphone_jobs
from harness.measure.protocol import WEIGHTS_SEED, ProtocolConfig
from harness.store.records import atomic_write_text, replacing_folder
from model_zoo.weights import state_sha256

VERSION = 1
MARKER = "manifest.json"


def bundle_format(backend: str) -> str:
    return f"onebench-{backend}-bundle"


def bundle_jobs(backend: str, models: list[str], precisions: list[str], devices: list[str]) -> list[Job]:
    return iphone_jobs(models, [backend], precisions, devices, {m: model_zoo.get_spec(m).input_size for m in models})


def export_bundle(backend_name: str, models: list[str], precisions: list[str] | None, devices: list[str] | None,
                  folder: Path, cfg: ProtocolConfig, cache_dir: Path, weights: str | None = None) -> tuple[Path, int]:
    """Prepare (convert and check) every (model, precision) with the backend, copy the artifacts into
    `folder`, write the manifest; return its path and number of jobs. Bad options fail before anything
    is written. Precisions and devices default to the backend's own defaults."""
    check_choice("backend", backend_name, registry.names())
    backend = registry.get(backend_name)
    if backend.prepare is None:
        raise HarnessError(f"{backend_name} has no device bundle; `bench export` is for backends that prepare "
                           "artifacts for a device (coreml)")
    precisions = precisions or [backend.default_precision]
    devices = devices or [backend.devices[0]]
    for m in models:
        model_zoo.get_spec(m)
    for p in precisions:
        check_choice(f"{backend_name} precision", p, backend.precisions)
    for d in devices:
        check_choice("compute unit", d, backend.devices)
    if weights and len(models) != 1:
        raise HarnessError("--weights loads one checkpoint: pass exactly one --model with it")
    entries: list[dict[str, Any]] = []
    with replacing_folder(folder, MARKER, "an onebench bundle", "--bundle") as staging:
        for model_name in models:
            torch.manual_seed(WEIGHTS_SEED)
            model = model_zoo.create(model_name, form="fused", weights=weights)
            weights_sha = state_sha256(model)
            for precision in precisions:
                jobs = bundle_jobs(backend_name, [model_name], [precision], devices)
                calib = None  # int8 (w8a8) calibrates on seeded random input here: a bundle times, it does not score
                if precision == "int8":
                    pre = model_zoo.get_spec(model_name).preprocess
                    calib = calibration.build(calibration.describe(None, None, pre), pre)
                path, artifact, info = backend.prepare(model, jobs[0].spec(), cache_dir, weights_sha, calib)
                target = staging / "packages" / f"{model_name.replace(':', '_')}-{precision}{path.suffix}"
                target.parent.mkdir(exist_ok=True)
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, target)
                for job in jobs:
                    entries.append({
                        "job_id": job.id, "job": job.as_dict(), "package": str(target.relative_to(staging)),
                        "package_sha256": artifact["sha256"], "input": {"name": INPUT_NAME, "shape": [1, 3, job.input_size, job.input_size]},
                        "output": OUTPUT_NAME, "weights_sha256": weights_sha, "graph": info.get("graph"),
                    })
        protocol = {**cfg.as_dict(), "clock": "monotonic, nanoseconds", "stop_rule": "distribution-free 95% CI of the median"}
        atomic_write_text(staging / "protocol.json", json.dumps(protocol, indent=1))
        manifest = {"format": bundle_format(backend_name), "version": VERSION,
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "onebench": __version__, "protocol": cfg.as_dict(), "jobs": entries}
        atomic_write_text(staging / MARKER, json.dumps(manifest, indent=1))
    return folder / MARKER, len(entries)
