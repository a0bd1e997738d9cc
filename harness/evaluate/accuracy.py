"""Top-1/top-5 measured through a backend's own artifact, beside PyTorch fp32 on the same images.

The backend opens the model exactly as a latency job does (the same cached ONNX / OpenVINO / Core ML
file for the same weights, precision and batch), so an accuracy record and a latency record with the
same artifact describe one file: `join_key` is how leaderboards pair them. A partial last batch is
padded to the artifact's fixed batch and the padding's outputs dropped.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import model_zoo
from backends import int8_recipe, registry
from backends.artifact_cache import file_sha256
from backends.base import JobSpec, OpenContext
from backends.options import RECIPE, ConfigError, parse_cli_options
from harness.errors import HarnessError
from harness.evaluate.datasets import ImageDataset, Samples, scan
from harness.evaluate.paired import paired_delta
from harness.host import environment
from harness.measure import calibration as calib
from harness.measure import recipe
from harness.measure.planner import PRECISIONS, check_choice, check_input_size
from harness.measure.selection import Selection
from harness.store.accuracy_records import SCHEMA_VERSION
from model_zoo.preprocess import at_size
from model_zoo.weights import state_sha256

Progress = Callable[[int, int], None]  # (images done, images in all)


def _subset(samples: Samples, limit: int | None) -> Samples:
    """`limit` images spread evenly over the (class-sorted) set, so every part of it is represented."""
    if limit is None or limit >= len(samples):
        return samples
    if limit < 1:
        raise HarnessError(f"--limit must be at least 1, not {limit}")
    idx = np.unique(np.linspace(0, len(samples) - 1, limit).round().astype(int))
    return Samples([samples.paths[i] for i in idx], [samples.labels[i] for i in idx], samples.layout,
                   len({samples.labels[i] for i in idx}))


class _Tally:
    """Running top-1/top-k counts, and each image's top-1 outcome (for the paired difference)."""

    def __init__(self, k: int) -> None:
        self.k, self.top1, self.topk, self.n = k, 0, 0, 0
        self.correct: list[np.ndarray] = []

    def add(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        topk = np.argsort(-logits, axis=1, kind="stable")[:, : self.k]
        self.correct.append(topk[:, 0] == labels)
        self.top1 += int((topk[:, 0] == labels).sum())
        self.topk += int((topk == labels[:, None]).any(axis=1).sum())
        self.n += len(labels)
        return topk[:, 0]

    def outcomes(self) -> np.ndarray:
        return np.concatenate(self.correct) if self.correct else np.zeros(0, dtype=bool)

    def rates(self) -> tuple[float, float]:
        return self.top1 / self.n, self.topk / self.n


def _backend(name: str, job: JobSpec):
    """The backend, or a one-line error when it cannot run `job` here."""
    backend = registry.get(name)
    avail = backend.availability()
    if not avail.ok:
        raise HarnessError(f"backend {name} cannot run here: {avail.reason}" + (f"; to fix: {avail.install}" if avail.install else ""))
    reason = registry.unsupported(backend, job)
    if reason:
        raise HarnessError(f"backend {name} cannot run this job: {reason}")
    return backend


DIAGNOSIS_INPUTS = 32  # calibration images the per-layer diagnosis runs (enough for a stable SQNR per tensor)


def check_layers(backend: Any, name: str, precision: str) -> None:
    """`--layers` needs an int8 job and a backend that can read a layer's int8 output (one line otherwise)."""
    if precision != "int8":
        raise HarnessError("--layers compares each layer's int8 output with fp32's: add -p int8")
    if not backend.layer_errors_by:
        able = sorted(b for b in registry.names() if registry.get(b).layer_errors_by)
        raise HarnessError(f"--layers: {name} gives onebench no way to read its layers' int8 outputs yet; "
                           f"use -b {' or -b '.join(able) or '(none here)'} for the diagnosis")


def with_drops(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row (graph order) with `drop_db`: how much accumulated SQNR is lost at it, against the row before
    (the first against the best SQNR of the graph: what a layer fed exact input keeps at most)."""
    finite = [r["sqnr_db"] for r in rows if r["sqnr_db"] is not None]
    before = max(finite, default=None)
    out = []
    for row in sorted(rows, key=lambda r: r["depth"]):
        here = row["sqnr_db"]
        out.append({**row, "drop_db": None if here is None or before is None else round(before - here, 2)})
        before = here if here is not None else before
    return out


def diagnose(session: Any, model: torch.nn.Module, calibration: Any, batch: int, by: str) -> dict[str, Any]:
    """Each layer's int8 output against fp32 on calibration inputs (never the evaluation images), in graph
    order, and each convolution's per-channel weight spread in the network the quantizer saw."""
    from model_zoo.equalize import channel_spread, folded

    inputs = [x for _, x in zip(range(max(1, DIAGNOSIS_INPUTS // batch)), calibration.batches(batch))]
    rows = with_drops(session.layer_errors(inputs))
    return {"method": f"{by}: SQNR (dB) of each activation of the int8 graph against the fp32 graph's "
            "(sqnr_db, accumulated to that layer); the SQNR its own quantize/dequantize step leaves (qdq_sqnr_db) "
            "where the runtime separates it; the accumulated SQNR lost at it (drop_db, from the layer before)",
            "inputs": sum(len(x) for x in inputs), "activations": rows,
            "weight_spread": {k: round(v, 3) for k, v in channel_spread(folded(copy.deepcopy(model))).items()}}


@dataclass(frozen=True)
class EvalData:
    """The labelled images top-1 is measured on, and how they are read (`bench accuracy --data ...`)."""

    path: Path
    limit: int | None = None  # N images spread evenly over the set
    labels: Path | None = None
    class_map: Path | None = None
    num_classes: int | None = None  # outputs of the model's head (default: the model's own)
    workers: int = 0


def check_labelled(selection: Selection, folders: list[Path], num_classes: int | None) -> None:
    """Before any search or build: the checkpoint loads with `num_classes` outputs (default the spec's) and
    each labelled folder's classes fit that head (one line naming the folder; #49 found a mismatch after
    19 s of search, with a half-written study left)."""
    for model in selection.models:
        outputs = num_classes or model_zoo.get_spec(model).num_classes
        if selection.weights:
            model_zoo.create(model, form="fused", weights=selection.weights, num_classes=outputs)
        for folder in folders:
            scan(Path(folder), outputs)


def _one(values: tuple, what: str, default: object = None) -> object:
    if len(values) > 1:
        raise HarnessError(f"accuracy evaluates one {what} at a time, not {len(values)}")
    return values[0] if values else default


def evaluate(selection: Selection, data: EvalData, *, cache_dir: Path, progress: Progress | None = None,
             layers: bool = False) -> dict[str, Any]:
    """Evaluate the selection's one model with its weights on `data` through its one backend; return the record.

    For int8 the artifact is the one `bench run -p int8` times with the same calibration and options;
    `layers` adds, per layer, its int8 output against fp32 on calibration inputs (`diagnose`); the selection's
    `input_size` replaces the model's own resolution (its pipeline otherwise unchanged)."""
    model_name, backend_name = _one(selection.models, "model"), _one(selection.backends, "backend")
    precision, batch = _one(selection.precisions, "precision", "fp32"), _one(selection.batches, "batch size", 1)
    device, threads, weights, input_size = selection.device, selection.threads, selection.weights, selection.input_size
    calibration, calibration_size, options = selection.calibration, selection.calibration_size, list(selection.options)
    limit, labels, class_map, num_classes, workers = data.limit, data.labels, data.class_map, data.num_classes, data.workers
    if not weights:
        raise HarnessError("accuracy needs trained weights: pass --weights FILE")
    check_choice("precision", precision, PRECISIONS)
    spec = model_zoo.get_spec(model_name)
    pre = at_size(spec.preprocess, None if input_size is None else check_input_size(input_size))
    for option, value, least in (("--batch", batch, 1), ("--threads", threads, 1), ("--num-classes", num_classes, 1),
                                 ("--workers", workers, 0), ("--limit", limit, 1)):
        if value is not None and value < least:
            raise HarnessError(f"{option} must be at least {least}, not {value}")
    num_classes = num_classes or spec.num_classes
    if not Path(weights).is_file():
        raise HarnessError(f"--weights {weights} is not a file; accuracy needs trained weights")
    check_choice("backend", backend_name, registry.names())
    try:
        if selection.job_options is not None:  # a planned job's (`of_job`): canonical already, taken as it is
            configured = selection.job_options
        else:
            parsed = parse_cli_options(options or [], [backend_name], registry.get)
            configured = int8_recipe.join(parsed.get(backend_name, ""), parsed.get(RECIPE, "") if precision == "int8" else "")
    except ConfigError as exc:
        raise HarnessError(str(exc)) from None
    job = JobSpec(model=model_name, backend=backend_name, device=device, precision=precision, batch=batch,
                  threads=threads, form="fused", input_size=pre.input_size, options=configured)
    if layers:
        check_layers(registry.get(backend_name), backend_name, precision)
    backend = _backend(backend_name, job)
    if precision != "int8" and (calibration is not None or calibration_size is not None):
        raise HarnessError("--calibration and --calibration-size apply to -p int8; drop them or add -p int8")
    described = calib.describe(calibration, calibration_size, pre) if precision == "int8" else None
    samples = _subset(scan(data.path, num_classes, labels, class_map), limit)

    torch.set_num_threads(threads)
    model = model_zoo.create(model_name, form="fused", weights=weights, num_classes=num_classes)
    weights_state = state_sha256(model)
    reference_model = copy.deepcopy(model)  # backends may move or cast the model they open
    model, prepared = recipe.apply(model, job)
    example = np.zeros((batch, 3, pre.input_size, pre.input_size), dtype=np.float32)
    start = time.perf_counter()
    calibration_set = calib.build(described, pre) if described else None
    try:
        session = backend.open(model, job, OpenContext(Path(cache_dir), state_sha256(model) if prepared else weights_state,
                                                       example, calibration=calibration_set))
        if prepared:
            session.info = {**session.info, "int8_recipe": prepared}
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - a runtime refusing this model is the user's one-line answer
        what = "quantize" if precision == "int8" else "open"
        raise HarnessError(f"{backend_name} could not {what} {model_name} ({type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else 'no message'}); "
                           "no accuracy was recorded") from None
    open_s = time.perf_counter() - start

    k = min(5, num_classes)
    measured, reference = _Tally(k), _Tally(k)
    agree = 0
    changed = 0
    loader = torch.utils.data.DataLoader(ImageDataset(samples, pre), batch_size=batch,
                                         num_workers=workers, shuffle=False)
    start = time.perf_counter()
    try:
        for images, targets, errors in loader:
            problem = next((e for e in errors if e), None)
            if problem:
                raise HarnessError(f"{problem}; remove or replace the file")
            n = len(targets)
            x = images.numpy()
            if n < batch:  # the artifact has a fixed batch: pad, then drop the padding's outputs
                x = np.concatenate([x, np.zeros((batch - n, *x.shape[1:]), dtype=x.dtype)])
            logits = np.asarray(session.infer(np.ascontiguousarray(x)), dtype=np.float32)[:n]
            if not np.isfinite(logits).all():  # argmax of NaN picks index 0: a top-1 that means nothing
                raise HarnessError(f"{backend_name} returned NaN/inf outputs for {model_name} on images of {data.path}; "
                                   "the weights or the artifact are broken, so no top-1 is recorded")
            y = targets.numpy()
            top1 = measured.add(logits, y)
            with torch.inference_mode():
                ref_top1 = reference.add(reference_model(images).float().numpy(), y)
            agree += int((top1 == ref_top1).sum())
            changed += int((top1 != ref_top1).sum())
            if progress:
                progress(measured.n, len(samples))
    finally:
        session.close()
    (top1, top5), (ref1, ref5) = measured.rates(), reference.rates()
    diagnosis = diagnose(session, model, calibration_set, batch, backend.layer_errors_by) if layers else None
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "accuracy",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "job": dataclasses.asdict(job),
        "weights": {"path": str(weights), "sha256": file_sha256(Path(weights)), "state_sha256": weights_state},
        "artifact": session.artifact,
        "data": {"path": str(data.path), "layout": samples.layout, "images": measured.n, "classes": samples.classes,
                 "limit": limit, "num_classes": num_classes},
        "preprocess": dataclasses.asdict(pre),
        "top1": top1, "top5": top5, "k": k,
        "reference": {"backend": "torch", "precision": "fp32", "device": "cpu", "top1": ref1, "top5": ref5},
        "delta_top1": top1 - ref1,
        "paired": paired_delta(measured.outcomes(), reference.outcomes(), changed),
        "agreement": agree / measured.n,
        "backend_config": job.config(backend).as_dict(),
        "calibration": calibration_set.describe() if calibration_set else None,
        "timing_s": {"open": open_s, "evaluate": time.perf_counter() - start},
        **({"layers": diagnosis} if diagnosis else {}),
        "backend_info": session.info,
        "host": environment.capture(),
    }
