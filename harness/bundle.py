"""The iPhone bundle: Core ML packages, the protocol's rules as JSON, and a manifest of jobs.

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
from backends.coreml import COMPUTE_UNITS, PRECISIONS, convert_and_check
from backends.onnx_export import INPUT_NAME, OUTPUT_NAME
from harness import __version__
from harness.errors import HarnessError
from harness.jobs import Job
from harness.plan_cli import check_choice
from harness.protocol import ProtocolConfig
from harness.records import atomic_write_text, swap_in
from harness.worker import WEIGHTS_SEED
from model_zoo.weights import state_sha256

FORMAT = "onebench-coreml-bundle"
VERSION = 1
BOUNDARY = "on-device"
MARKER = "manifest.json"


def bundle_jobs(models: list[str], precisions: list[str], compute_units: list[str]) -> list[Job]:
    return [Job(model=m, backend="coreml", device=u, precision=p, batch=1, threads=1, form="fused",
                input_size=model_zoo.get_spec(m).input_size, boundary=BOUNDARY)
            for m in models for p in precisions for u in compute_units]


def export_bundle(models: list[str], precisions: list[str], compute_units: list[str], folder: Path,
                  cfg: ProtocolConfig, cache_dir: Path, weights: str | None = None) -> tuple[Path, int]:
    """Convert and check every (model, precision), copy the packages into `folder`, write the manifest;
    return the manifest's path and its number of jobs. Bad options fail before anything is written."""
    for m in models:
        model_zoo.get_spec(m)
    for p in precisions:
        check_choice("Core ML precision", p, tuple(PRECISIONS))
    for unit in compute_units:
        check_choice("Core ML compute unit", unit, tuple(COMPUTE_UNITS))
    if weights and len(models) != 1:
        raise HarnessError("--weights loads one checkpoint: pass exactly one --model with it")
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / MARKER).exists())):
        raise HarnessError(f"{folder} exists and is not an onebench bundle; pass a new or empty folder to --bundle")
    staging = folder.with_name(folder.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "packages").mkdir(parents=True)
    entries: list[dict[str, Any]] = []
    try:
        for model_name in models:
            torch.manual_seed(WEIGHTS_SEED)
            model = model_zoo.create(model_name, form="fused", weights=weights)
            weights_sha = state_sha256(model)
            for precision in precisions:
                first = bundle_jobs([model_name], [precision], compute_units)
                path, artifact, info = convert_and_check(model, first[0].spec(), cache_dir, weights_sha)
                target = staging / "packages" / f"{first[0].model.replace(':', '_')}-{precision}.mlpackage"
                shutil.copytree(path, target)
                for job in first:
                    entries.append({
                        "job_id": job.id, "job": job.as_dict(), "package": str(target.relative_to(staging)),
                        "package_sha256": artifact["sha256"], "input": {"name": INPUT_NAME, "shape": [1, 3, job.input_size, job.input_size]},
                        "output": OUTPUT_NAME, "weights_sha256": weights_sha, "graph": info["graph"],
                    })
        protocol = {**cfg.as_dict(), "clock": "monotonic, nanoseconds", "stop_rule": "distribution-free 95% CI of the median"}
        atomic_write_text(staging / "protocol.json", json.dumps(protocol, indent=1))
        manifest = {"format": FORMAT, "version": VERSION, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "onebench": __version__, "protocol": cfg.as_dict(), "jobs": entries}
        atomic_write_text(staging / MARKER, json.dumps(manifest, indent=1))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    swap_in(staging, folder)
    return folder / MARKER, len(entries)
