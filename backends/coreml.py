"""Core ML: convert anywhere, check the converted program, time `predict` on macOS per compute unit.

Conversion is coremltools' `convert` of a `torch.export` program to an ML Program (`.mlpackage`),
minimum deployment target iOS 16 / macOS 13, fixed input shape, fp16 (Core ML's default) or fp32
compute precision, cached by weights hash, coremltools version and options. The converted program's
operations are counted and checked against the model spec's deployed-graph rule (a fused MobileOne:
no `add`, no `batch_norm` left): the paper's claim that inference has no branches, checked on the file
that ships.

A job's device is the Core ML compute units (`all`, `cpu`, `cpu-gpu`, `cpu-ne`). On macOS the
package is compiled (`compile_s`), loaded with those units (`load_s`) and `predict` is timed by the
shared protocol; on macOS 14.4+ the compute plan records where each operation is meant to run. Off
Apple OSes a job converts and checks, then ends as a `skipped` record that says where the package is.

int8 is one of three variants of the fp16 program (`CoreMLConfig.int8_mode`, named in the job key when
not the default): 8-bit weights (`linear_quantize_weights`), 8-bit weights and activations (plus
`linear_quantize_activations`, which calibrates by running Core ML: macOS only), or 8-bit palettized
weights (`palettize_weights`); the record counts the compressed weight and activation ops.
"""

from __future__ import annotations

import collections
import hashlib
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from backends.base import (
    Availability,
    Backend,
    JobSpec,
    OpenContext,
    Session,
    SkipJob,
    common_unsupported,
    module_availability,
)
from backends.calibration import Calibration, require
from backends.config import BackendConfig, choices
from backends.graph_rules import check_graph, deployed_rule, describe
from backends.int8_recipe import split
from backends.onnx_export import INPUT_NAME, OUTPUT_NAME
from backends.profiling import OpTime, Profiled, timed

INSTALL = "pip install 'onebench[coreml]'"
COMPUTE_UNITS = {"all": "ALL", "cpu": "CPU_ONLY", "cpu-gpu": "CPU_AND_GPU", "cpu-ne": "CPU_AND_NE"}
PRECISIONS = {"fp16": "FLOAT16", "fp32": "FLOAT32"}
TARGET = "iOS16"  # ML Program on iOS 16 / macOS 13 and newer
# Core ML MIL op types -> the zoo's runtime-neutral kinds (for the deployed-graph rule)
OP_KINDS = {"add": "add", "batch_norm": "batchnorm"}
DEVICE_CLASSES = {"MLNeuralEngineComputeDevice": "neural-engine", "MLGPUComputeDevice": "gpu", "MLCPUComputeDevice": "cpu"}


def predicts_here() -> bool:
    return sys.platform == "darwin"


def quiet_coremltools():
    """Import coremltools without its import-time chatter (the native proxies it cannot load off macOS,
    the untested-torch warning); conversion progress bars are silenced the same way."""
    import contextlib
    import io
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def coremltools_version() -> str:
    from importlib.metadata import version

    return version("coremltools")


@dataclass(frozen=True)
class CoreMLConfig(BackendConfig):
    """int8 variants (`coremltools.optimize.coreml`): 8-bit weights, 8-bit weights and activations, or 8-bit
    palettized weights; the job key names any but the default."""

    int8_mode: str = choices("w8", "w8a8", "palettize8",
                             help="w8: linear_quantize_weights; w8a8: + linear_quantize_activations (calibrates by "
                                  "running Core ML: macOS only); palettize8: palettize_weights, 8-bit k-means LUT")


def package_path(cache_dir: Path, job: JobSpec, weights_hash: str, extra: str = "") -> Path:
    key = f"{weights_hash}|{coremltools_version()}|{torch.__version__}|{TARGET}|{job.precision}|{job.batch}|{job.input_size}{extra}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = job.model.replace(":", "_").replace("/", "_")
    return cache_dir / "coreml" / f"{safe}-{job.precision}-b{job.batch}-{job.input_size}-{digest}.mlpackage"


def compress(mlmodel: Any, mode: str, calibration: Calibration, batch: int) -> Any:
    """The int8 variant of a converted fp16 program, with coremltools' own optimizers."""
    import coremltools.optimize.coreml as cto

    if mode == "palettize8":
        config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=8))
        return cto.palettize_weights(mlmodel, config)
    if mode == "w8a8":
        samples = [{INPUT_NAME: x} for x in calibration.batches(batch)]
        activations = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"))
        mlmodel = cto.linear_quantize_activations(mlmodel, activations, samples)
    weights = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
    return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=weights))


def convert(model: nn.Module, job: JobSpec, cache_dir: Path, weights_hash: str,
            calibration: Calibration | None = None) -> tuple[Path, float]:
    """Return the cached `.mlpackage` for this model and options, and the seconds spent converting (0 on a hit).
    int8 converts at fp16 (Core ML's float default), then compresses (`compress`)."""
    mode = CoreMLConfig.parse(split(job.options)[0], job.backend).int8_mode if job.precision == "int8" else ""
    if mode == "w8a8" and not predicts_here():
        raise SkipJob(f"Core ML int8 {mode} calibrates activations by running the model through Core ML, which "
                      f"needs macOS (this is {sys.platform}); w8 and palettize8 convert here")
    calib = require(calibration, "coreml") if mode == "w8a8" else calibration
    extra = f"|{mode}|{calib.digest if calib and mode == 'w8a8' else ''}" if mode else ""
    path = package_path(cache_dir, job, weights_hash, extra)
    if path.exists():
        return path, 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(job.batch, 3, job.input_size, job.input_size)
    start = time.perf_counter()
    with quiet_coremltools():
        import coremltools as ct

        program = torch.export.export(model.float().eval(), (example,)).run_decompositions({})
        mlmodel = ct.convert(
            program, inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(example.shape))],
            outputs=[ct.TensorType(name=OUTPUT_NAME)], convert_to="mlprogram",
            minimum_deployment_target=getattr(ct.target, TARGET),
            compute_precision=getattr(ct.precision, PRECISIONS.get(job.precision, "FLOAT16")),
        )
        if mode:
            mlmodel = compress(mlmodel, mode, calib, job.batch)
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    mlmodel.save(str(tmp))
    os.replace(tmp, path)
    return path, time.perf_counter() - start


def op_counts(package: Path) -> dict[str, int]:
    """Operations of the package's ML Program by type (nested blocks included); no Apple OS needed."""
    with quiet_coremltools():
        import coremltools as ct

    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    counts: collections.Counter[str] = collections.Counter()

    def walk(block: Any) -> None:
        for op in block.operations:
            counts[op.type] += 1
            for inner in op.blocks:
                walk(inner)

    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    return dict(sorted(counts.items()))


def package_sha256(package: Path) -> str:
    """A hash over every file of the package directory (relative names and bytes, sorted)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(package).rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(package)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


QUANTIZED_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale", "constexpr_lut_to_dense", "quantize",
                 "dequantize")


def convert_and_check(model: nn.Module, job: JobSpec, cache_dir: Path, weights_hash: str,
                      calibration: Calibration | None = None) -> tuple[Path, dict, dict]:
    """Convert (cached), count and check: (package, artifact, info). A failed check raises."""
    path, convert_s = convert(model, job, cache_dir, weights_hash, calibration)
    ops = op_counts(path)
    check = check_graph(ops, OP_KINDS, deployed_rule(job.model))
    if job.form == "fused" and check.get("passed") is False:
        raise RuntimeError(f"the converted fused {job.model} breaks its deployed-graph rule: {describe(check)}")
    artifact = {"path": str(path), "sha256": package_sha256(path), "format": "mlpackage",
                "deployment_target": TARGET, "convert_s": convert_s}
    info: dict[str, Any] = {"coremltools": coremltools_version(), "graph": check}
    if job.precision == "int8":
        mode = CoreMLConfig.parse(split(job.options)[0], job.backend).int8_mode
        info["quantization"] = {
            "tool": f"coremltools.optimize {coremltools_version()}", "format": f"ML Program, {mode}", "int8_mode": mode,
            "calibration": calibration.describe() if calibration and mode == "w8a8" else None,
            "graph": {"quantized_ops": sum(ops.get(op, 0) for op in QUANTIZED_OPS),
                      "quantized_op_types": {op: ops[op] for op in QUANTIZED_OPS if op in ops}}}
    return path, artifact, info


def compute_plan(compiled: str, units: Any) -> dict[str, int] | None:
    """Operations per preferred compute device (macOS 14.4+), or None where Core ML cannot tell."""
    try:
        from coremltools.models.compute_plan import MLComputePlan

        plan = MLComputePlan.load_from_path(path=compiled, compute_units=units)
        program = plan.model_structure.program
        counts: collections.Counter[str] = collections.Counter()
        for op in program.functions["main"].block.operations:
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            device = type(usage.preferred_compute_device).__name__ if usage else "unknown"
            counts[DEVICE_CLASSES.get(device, device)] += 1
        return dict(counts)
    except Exception:  # noqa: BLE001 - older macOS or coremltools: the plan is optional information
        return None


def plan_profile(compiled: str, units: Any, run: Callable[[], None], n: int) -> Profiled:
    """Core ML has no per-op timer a program can read: `MLComputePlan` (macOS 14.4+) gives each operation's
    preferred compute unit and estimated share of the work. The shares are the rows (`estimated`: the
    harness scales them by the measured wall time of `n` plain predictions)."""
    from coremltools.models.compute_plan import MLComputePlan

    plan = MLComputePlan.load_from_path(path=compiled, compute_units=units)
    ops = []
    for op in plan.model_structure.program.functions["main"].block.operations:
        cost = plan.get_estimated_cost_for_mlprogram_operation(op)
        if cost is None:  # constants and the like: no work of their own
            continue
        usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
        unit = type(usage.preferred_compute_device).__name__ if usage else "unknown"
        ops.append(OpTime(name=op.outputs[0].name if op.outputs else op.operator_name, op=op.operator_name,
                          ms=cost.weight, exec=DEVICE_CLASSES.get(unit, unit)))
    walls = [timed(run) for _ in range(n)]
    return Profiled(f"coremltools {coremltools_version()} MLComputePlan (estimated cost per op)", [ops], walls,
                    estimated=True, notes=["Core ML reports an estimated share of the work per op, not a measured time"])


class CoreML(Backend):
    name = "coreml"
    profiler = "MLComputePlan (per-op compute unit and estimated cost; macOS 14.4+)"
    packages = ("coremltools",)  # the versions a record of this backend states
    description = "Core ML (ML Program; times on macOS, converts anywhere)"
    devices = tuple(COMPUTE_UNITS)  # its own: the compute units, "all" first (the default)
    own_devices = True
    device_slot = "coreml"  # a lab node with Core ML (macOS) offers its compute units as one slot
    on_device = True  # `--device iphone`: the jobs of a device bundle, timed by the Swift runner
    precisions = (*PRECISIONS, "int8")
    config = CoreMLConfig
    default_precision = "fp16"  # Core ML's own default, and the paper's iPhone figures

    def availability(self) -> Availability:
        avail = module_availability("coremltools", INSTALL)
        if not avail.ok or predicts_here():
            return avail
        return Availability(False, f"Core ML prediction needs macOS or iOS (this is {sys.platform}); jobs convert and "
                            "check the package, then are skipped", version=avail.version, prepares=True)

    def unsupported(self, job: JobSpec) -> str | None:
        reason = common_unsupported(self, job)
        if reason and job.device not in COMPUTE_UNITS:
            reason += " (Core ML compute units: pass --compute-units)"
        return reason

    def prepare(self, model: nn.Module, job: JobSpec, cache_dir: Path, weights_hash: str,
                calibration: Calibration | None = None) -> tuple[Path, dict, dict]:
        """The checked package a device runs (for `bench export --bundle`); the same file `open` times."""
        return convert_and_check(model, job, cache_dir, weights_hash, calibration)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        path, artifact, info = self.prepare(model, job, ctx.cache_dir, ctx.weights_hash, ctx.calibration)
        cold = {"convert_s": artifact.pop("convert_s")}
        if not predicts_here():
            raise SkipJob(f"Core ML prediction needs macOS or iOS (this is {sys.platform}); converted and checked "
                          f"{path} (time it on a Mac with `bench run --backend coreml`, or on an iPhone through "
                          "`bench export --backend coreml --bundle DIR`)", artifact=artifact, info=info, cold=cold)
        import coremltools as ct

        units = getattr(ct.ComputeUnit, COMPUTE_UNITS[job.device])
        start = time.perf_counter()
        compiled = ct.models.utils.compile_model(str(path))
        cold["compile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        loaded = ct.models.CompiledMLModel(compiled, compute_units=units)
        cold["load_s"] = time.perf_counter() - start
        feed = {INPUT_NAME: ctx.example}

        def run() -> None:
            loaded.predict(feed)

        def infer(x: np.ndarray) -> np.ndarray:
            return np.asarray(loaded.predict({INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[OUTPUT_NAME],
                              dtype=np.float32)

        info.update(compute_units=job.device, macos=platform.mac_ver()[0], compute_plan=compute_plan(compiled, units))
        return Session(run=run, infer=infer, cold=cold, artifact=artifact, info=info,
                       profile=lambda n: plan_profile(compiled, units, run, n),
                       close=lambda: shutil.rmtree(compiled, ignore_errors=True))
