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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import model_zoo
from backends import registry
from backends.artifact_cache import file_sha256
from backends.base import JobSpec, OpenContext
from harness.errors import HarnessError
from harness.evaluate.datasets import ImageDataset, Samples, scan
from harness.evaluate.paired import paired_delta
from harness.host import environment
from harness.measure import calibration as calib
from harness.measure import recipe
from harness.measure.jobs import Job
from harness.measure.launch import Launcher, LocalLauncher, Progress, Step
from harness.measure.outcomes import Failed, Lost, Skipped
from harness.measure.payload import JobPayload
from harness.measure.planner import DEVICES, PRECISIONS, check_choice, check_input_size, jobs
from harness.measure.selection import Selection
from harness.plugins import load_plugins
from harness.store.accuracy_records import SCHEMA_VERSION
from model_zoo.preprocess import at_size
from model_zoo.weights import state_sha256


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


TARGET = "harness.evaluate.accuracy:evaluate_process"
TIMEOUT_S = 4 * 3600.0  # a whole ImageNet validation set (50 000 images) through a slow runtime, on one thread


@dataclass(frozen=True, kw_only=True)
class AccuracyPayload:
    """One evaluation's process: its job as a measuring process opens it (weights, calibration), the images
    already read from `data` (`samples`), the head's outputs, and whether to diagnose the layers."""

    opened: JobPayload
    data: EvalData
    samples: Samples
    num_classes: int
    layers: bool = False

    @property
    def job(self) -> Job:
        return self.opened.job

    def here(self, cache_dir: str | None = None) -> AccuracyPayload:
        """As a node opens it: its registration of the backend, its artifact cache."""
        return dataclasses.replace(self, opened=self.opened.here(cache_dir))


def plan(selection: Selection, data: EvalData, *, cache_dir: Path, layers: bool = False) -> AccuracyPayload:
    """The selection's one job, planned by the one planner (`planner.jobs`: the artifact a latency job of the
    same options times) and checked before any work, with the images it is evaluated on."""
    model_name, backend_name = _one(selection.models, "model"), _one(selection.backends, "backend")
    precision, batch = _one(selection.precisions, "precision", "fp32"), _one(selection.batches, "batch size", 1)
    if not selection.weights:
        raise HarnessError("accuracy needs trained weights: pass --weights FILE")
    for option, value, least in (("--batch", batch, 1), ("--threads", selection.threads, 1),
                                 ("--num-classes", data.num_classes, 1), ("--workers", data.workers, 0),
                                 ("--limit", data.limit, 1)):
        if value is not None and value < least:
            raise HarnessError(f"{option} must be at least {least}, not {value}")
    if not Path(selection.weights).is_file():
        raise HarnessError(f"--weights {selection.weights} is not a file; accuracy needs trained weights")
    check_choice("backend", backend_name, registry.names())
    check_choice("precision", precision, PRECISIONS)
    if layers:
        check_layers(registry.get(backend_name), backend_name, precision)
    if precision != "int8" and (selection.calibration is not None or selection.calibration_size is not None):
        raise HarnessError("--calibration and --calibration-size apply to -p int8; drop them or add -p int8")
    units = registry.get(backend_name).own_devices and selection.device not in DEVICES
    chosen = selection.but(models=(model_name,), backends=(backend_name,), precisions=(precision,), batches=(batch,),
                           form="fused", device="cpu" if units else selection.device,
                           compute_units=(selection.device,) if units else ())
    if selection.input_size is not None:
        check_input_size(selection.input_size)
    backend = registry.get(backend_name)  # a precision the backend has no path for is said before the images are read
    unsupported = registry.unsupported(backend, JobSpec(model=model_name, backend=backend_name, device=selection.device,
                                                        precision=precision))
    if unsupported:
        raise HarnessError(f"backend {backend_name} cannot run this job: {unsupported}")
    num_classes = data.num_classes or model_zoo.get_spec(model_name).num_classes
    samples = _subset(scan(data.path, num_classes, data.labels, data.class_map), data.limit)
    (job,) = jobs(chosen)  # a Core ML compute unit is the job's device, as a latency job's
    pre = at_size(model_zoo.get_spec(model_name).preprocess, job.input_size)
    spec = calib.describe(selection.calibration, selection.calibration_size, pre) if precision == "int8" else None
    # the step's process may run in another folder (a fork server started earlier, a lab's node): absolute paths
    samples = Samples([Path(p).resolve() for p in samples.paths], samples.labels, samples.layout, samples.classes)
    weights = str(Path(selection.weights).resolve())
    return AccuracyPayload(opened=JobPayload.of_job(job, cache_dir, weights=weights, calibration=spec),
                           data=data, samples=samples, num_classes=num_classes, layers=layers)


def evaluate(selection: Selection, data: EvalData, *, cache_dir: Path, progress: Progress | None = None,
             layers: bool = False, launcher: Launcher | None = None) -> dict[str, Any]:
    """Evaluate the selection's one model with its weights on `data` through its one backend; return the record.

    Planned (`plan`), then run in a fresh process launched as every step is (this machine's fork server, or a
    lab's node: `--cluster`), which reports its images as it goes (`progress`). For int8 the artifact is the one
    `bench run -p int8` times with the same calibration and options; `layers` adds, per layer, its int8 output
    against fp32 on calibration inputs (`diagnose`)."""
    payload = plan(selection, data, cache_dir=cache_dir, layers=layers)
    job = payload.job
    launcher = launcher or LocalLauncher([job.backend])
    reason = launcher.cannot_run(job)
    if reason:
        raise HarnessError(f"backend {job.backend} cannot run this job here: {reason}")
    placed = launcher.submit(Step(job, TARGET, payload, TIMEOUT_S, progress=progress)).result()
    outcome = placed.outcome
    if isinstance(outcome, Skipped):
        raise HarnessError(f"backend {job.backend} cannot run this job here: {outcome.reason}")
    if isinstance(outcome, (Failed, Lost)):
        said = outcome.message.removeprefix(f"{HarnessError.__name__}: ")
        raise HarnessError(said if said != outcome.message else f"evaluating {job.model} on {job.backend} failed: {said}")
    return {**outcome.result, "host": placed.host or outcome.result["host"]}


def evaluate_process(payload: AccuracyPayload) -> dict[str, Any]:
    """In the step's process: open the job's artifact as a measuring process does, run every image through it
    and through PyTorch fp32, and build the record (`report`s the images done as it goes)."""
    import multiprocessing as mp

    from harness.measure.worker import report

    load_plugins()
    sent, data, samples, num_classes = payload.opened, payload.data, payload.samples, payload.num_classes
    sent.bring_model()
    job = sent.job.spec()
    backend = registry.load(sent.backend_ref)
    pre = at_size(model_zoo.get_spec(job.model).preprocess, job.input_size)
    if data.workers:  # a step's process is a daemon, which may not start processes: its image decoders are its own
        mp.current_process().daemon = False
    torch.set_num_threads(job.threads)
    model = model_zoo.create(job.model, form="fused", weights=sent.weights, num_classes=num_classes)
    weights_state = state_sha256(model)
    reference_model = copy.deepcopy(model)  # backends may move or cast the model they open
    model, prepared = recipe.apply(model, job)
    example = np.zeros((job.batch, 3, pre.input_size, pre.input_size), dtype=np.float32)
    start = time.perf_counter()
    calibration_set = calib.build(sent.calibration, pre) if sent.calibration else None
    try:
        session = backend.open(model, job, OpenContext(Path(sent.cache_dir), state_sha256(model) if prepared else weights_state,
                                                       example, calibration=calibration_set))
        if prepared:
            session.info = {**session.info, "int8_recipe": prepared}
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - a runtime refusing this model is the user's one-line answer
        what = "quantize" if job.precision == "int8" else "open"
        raise HarnessError(f"{job.backend} could not {what} {job.model} ({type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else 'no message'}); "
                           "no accuracy was recorded") from None
    open_s = time.perf_counter() - start

    k = min(5, num_classes)
    measured, reference = _Tally(k), _Tally(k)
    agree = 0
    changed = 0
    loader = torch.utils.data.DataLoader(ImageDataset(samples, pre), batch_size=job.batch,
                                         num_workers=data.workers, shuffle=False)
    start = time.perf_counter()
    try:
        for images, targets, errors in loader:
            problem = next((e for e in errors if e), None)
            if problem:
                raise HarnessError(f"{problem}; remove or replace the file")
            n = len(targets)
            x = images.numpy()
            if n < job.batch:  # the artifact has a fixed batch: pad, then drop the padding's outputs
                x = np.concatenate([x, np.zeros((job.batch - n, *x.shape[1:]), dtype=x.dtype)])
            logits = np.asarray(session.infer(np.ascontiguousarray(x)), dtype=np.float32)[:n]
            if not np.isfinite(logits).all():  # argmax of NaN picks index 0: a top-1 that means nothing
                raise HarnessError(f"{job.backend} returned NaN/inf outputs for {job.model} on images of {data.path}; "
                                   "the weights or the artifact are broken, so no top-1 is recorded")
            y = targets.numpy()
            top1 = measured.add(logits, y)
            with torch.inference_mode():
                ref_top1 = reference.add(reference_model(images).float().numpy(), y)
            agree += int((top1 == ref_top1).sum())
            changed += int((top1 != ref_top1).sum())
            report(measured.n, len(samples))
    finally:
        session.close()
    (top1, top5), (ref1, ref5) = measured.rates(), reference.rates()
    diagnosis = diagnose(session, model, calibration_set, job.batch, backend.layer_errors_by) if payload.layers else None
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "accuracy",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "job": dataclasses.asdict(job),
        "weights": {"path": str(sent.weights), "sha256": file_sha256(Path(sent.weights)), "state_sha256": weights_state},
        "artifact": session.artifact,
        "data": {"path": str(data.path), "layout": samples.layout, "images": measured.n, "classes": samples.classes,
                 "limit": data.limit, "num_classes": num_classes},
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
