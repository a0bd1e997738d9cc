"""OpenVINO on the CPU, from the cached ONNX export, with a static input shape.

Precision is always explicit (`INFERENCE_PRECISION_HINT`): OpenVINO otherwise runs bf16 on CPUs that
have it and reports an fp32 model. The latency hint and `INFERENCE_NUM_THREADS` match the job; the
settings the compiled model reports back are recorded.

int8 is NNCF post-training quantization (`nncf.quantize`) of the converted IR, preset recorded; the
float remainder runs at `int8_float_precision` (f32 unless asked), and the compiled model's execution
graph says which layers run in an integer precision and which fell back to float.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from backends.artifact_cache import cached, recorded_sha256
from backends.base import Availability, Backend, JobSpec, OpenContext, Session, common_unsupported, module_availability
from backends.calibration import Calibration, require
from backends.config import BackendConfig, choices, option
from backends.onnx_export import checked_graph, export_availability, export_onnx
from backends.onnx_layers import LayerNames, layer_table
from backends.onnx_quantize import float_nodes
from backends.openvino_diagnosis import layer_errors as diagnose
from backends.profiling import PROFILE_WARMUP, Profiled, timed

INSTALL = "pip install 'onebench[openvino]'"
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
COMPUTE_LAYERS = {"Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Deconvolution"}
INTEGER = {"i8", "u8", "i4", "u4"}
CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}
# OpenVINO's CPU plugin has no wait-policy property: its TBB workers spin briefly, then sleep; at the
# default single thread an idle request has no worker threads at all.
WAIT_POLICY = "TBB default (no passive setting exists)"


@dataclass(frozen=True)
class OpenVinoConfig(BackendConfig):
    """Compile properties, and (int8) NNCF's settings."""

    performance_hint: str = choices("LATENCY", "THROUGHPUT", help="PERFORMANCE_HINT")
    preset: str = choices("performance", "mixed", help="nncf.QuantizationPreset (symmetric or asymmetric activations)")
    fast_bias_correction: bool = option(True, "NNCF's fast bias correction (False: the full algorithm)")
    int8_float_precision: str = choices("f32", "bf16", help="precision of what int8 leaves in float")


def cpu_capabilities() -> list[str]:
    import openvino as ov

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def _text(value: object) -> str:
    """A property as OpenVINO spells it in its config ("f32", not "<Type: 'float32'>")."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def converted_ir(ov, core, onnx: Path, shape: list[int]):
    """The ONNX file converted to OpenVINO IR once, saved beside it (keyed by the ONNX file's name, which
    already keys weights, exporter and shape, plus OpenVINO's version), then read back: converting costs
    0.1-0.8 s in every measurement process, reading the IR a fraction of that."""
    ir = onnx.with_name(f"{onnx.stem}.ov{ov.__version__.split('-')[0]}.xml")

    def build(tmp: Path) -> None:
        ov.save_model(ov.convert_model(str(onnx), input=[ov.PartialShape(shape)]), str(tmp), compress_to_fp16=False)

    cached(ir, build, companions=(".bin",))
    return core.read_model(str(ir))


class OpenVinoCPU(Backend):
    name = "openvino"
    peak_probe = True  # its own GEMM is part of the machine's ceiling (harness.measure.peak)
    profiler = "performance counters (per-layer real time and kernel)"
    packages = ("onnx", "onnxscript", "openvino")  # the versions a record of this backend states
    description = "OpenVINO (CPU plugin)"
    devices = ("cpu",)
    precisions = ("fp32", "bf16", "fp16", "int8")
    layer_errors_by = "OpenVINO intermediate outputs (Model.add_outputs) of NNCF's int8 model against the fp32 model"
    config = OpenVinoConfig
    int8_search = "backends.openvino_accuracy:reverted_layers"  # NNCF's accuracy control (`bench int8 --budget`)
    # Not preloaded by the sweep's fork server: `import openvino` starts its telemetry sender on a thread
    # (openvino_telemetry, pulled in by openvino.tools.ovc), and a process forked while that thread holds the
    # sender's lock deadlocks the next time it converts or quantizes (ovc and NNCF send telemetry too). Seen
    # as measurement processes hanging until their timeout; each process imports openvino itself (~0.2 s).

    def availability(self) -> Availability:
        return export_availability("openvino", INSTALL)

    def unsupported(self, job: JobSpec) -> str | None:
        reason = common_unsupported(self, job)
        if reason is None and job.precision == "int8" and not module_availability("nncf", "").ok:
            reason = "int8 on OpenVINO is NNCF's post-training quantization; to fix: pip install 'onebench[openvino]'"
        if reason is None and job.precision in CAPABILITY and CAPABILITY[job.precision] not in cpu_capabilities():
            reason = f"this CPU has no native {job.precision} support in OpenVINO (capabilities: {', '.join(cpu_capabilities())})"
        return reason

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        import openvino as ov

        path, export_s = export_onnx(model, job.model, ctx.weights_hash, job.batch, job.input_size, ctx.cache_dir)
        graph = checked_graph(path, job.model, job.form)
        core = ov.Core()
        start = time.perf_counter()
        ov_model = converted_ir(ov, core, path, list(ctx.example.shape))
        convert_s = time.perf_counter() - start
        options: OpenVinoConfig = job.config(self)
        cold, extra = {"export_s": export_s, "convert_s": convert_s}, {}
        artifact = {"path": str(path), "sha256": recorded_sha256(path), "format": "onnx"}
        fp32_model = ov_model
        if job.precision == "int8":
            ov_model, cold["quantize_s"], extra["quantization"], artifact = _quantized(
                ov, core, ov_model, path, options, require(ctx.calibration, self.name), job.batch, job.recipe().layers())
        config = {
            "PERFORMANCE_HINT": options.performance_hint,
            "INFERENCE_NUM_THREADS": job.threads,
            "INFERENCE_PRECISION_HINT": options.int8_float_precision if job.precision == "int8" else PRECISION_HINTS[job.precision],
        }
        start = time.perf_counter()
        compiled = core.compile_model(ov_model, "CPU", config)
        cold["compile_s"] = time.perf_counter() - start
        if job.precision == "int8":
            extra["quantization"]["runtime"] = runtime_precisions(compiled)
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(ctx.example, shared_memory=True))

        def run() -> None:
            request.infer()

        names = LayerNames(layer_table(path))

        def profile(n: int) -> Profiled:
            """A twin compiled with PERF_COUNT (the timed one stays without it): each layer's real time and
            execution type (the oneDNN kernel) after every inference."""
            twin = core.compile_model(ov_model, "CPU", {**config, "PERF_COUNT": True})
            twin_request = twin.create_infer_request()
            twin_request.set_input_tensor(ov.Tensor(ctx.example, shared_memory=True))
            inferences, walls = [], []
            for i in range(PROFILE_WARMUP + n):
                wall = timed(twin_request.infer)
                if i >= PROFILE_WARMUP:
                    walls.append(wall)
                    inferences.append([names.op_time(p.node_name, p.node_type, p.real_time.total_seconds() * 1e3, p.exec_type)
                                       for p in twin_request.get_profiling_info() if p.status == ov.ProfilingInfo.Status.EXECUTED])
            return Profiled(f"openvino {ov.__version__} performance counters (PERF_COUNT)", inferences, walls)

        def infer(x: np.ndarray) -> np.ndarray:
            return np.array(compiled(np.ascontiguousarray(x, dtype=np.float32))[0], dtype=np.float32)

        reported = {key: _text(compiled.get_property(key)) for key in
                    ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT", "NUM_STREAMS")}
        def layer_errors(inputs: list[np.ndarray]) -> list[dict]:
            return diagnose(core, fp32_model, ov_model, config, names, inputs)

        return Session(
            run=run, infer=infer, cold=cold, profile=profile,
            layer_errors=layer_errors if job.precision == "int8" else None,
            artifact=artifact,
            info={"openvino": reported, "wait_policy": WAIT_POLICY, "graph": graph, **extra},
        )


def _quantized(ov, core, ov_model, onnx: Path, options: OpenVinoConfig, calibration: Calibration,
               batch: int, float_layers: list[str]) -> tuple[object, float, dict, dict]:
    """NNCF's int8 IR of the converted model, cached by the ONNX file, calibration (by content), NNCF's
    settings and both tools' versions; read back as the float IR is. `float_layers` (module names) stay
    float through NNCF's ignored scope: the OpenVINO ops the ONNX nodes of those modules became (OpenVINO
    names an op after its ONNX node, `node_conv2d_3/WithoutBiases`)."""
    import nncf

    settings: dict = {"preset": options.preset, "fast_bias_correction": options.fast_bias_correction}
    nodes = float_nodes(onnx, float_layers) if float_layers else []
    if nodes:
        settings["ignored_scope"] = nodes
    key = hashlib.sha256(f"{recorded_sha256(onnx)}|{calibration.digest}|{sorted(settings.items())}|{nncf.__version__}|"
                         f"{ov.__version__}".encode()).hexdigest()[:16]
    ir = onnx.parent.parent / "int8" / f"{onnx.stem}-nncf-{key}.xml"

    def build(tmp: Path) -> None:
        presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
        inputs = list(calibration.batches(batch))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # progress bars
            ignored = nncf.IgnoredScope(patterns=[f"^{re.escape(node)}(/.*)?$" for node in nodes])
            quantized = nncf.quantize(ov_model, nncf.Dataset(inputs), preset=presets[options.preset],
                                      subset_size=len(inputs), fast_bias_correction=options.fast_bias_correction,
                                      ignored_scope=ignored)
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)

    start = time.perf_counter()
    built = cached(ir, build, companions=(".bin",))
    seconds = time.perf_counter() - start if built else 0.0
    model = core.read_model(str(ir))
    fake = sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
    info = {"tool": f"nncf {nncf.__version__}", "format": "OpenVINO IR with FakeQuantize", **settings,
            "calibration": calibration.describe(), "graph": {"fake_quantize": fake}}
    return model, seconds, info, {"path": str(ir), "sha256": recorded_sha256(ir), "format": "openvino-ir"}


def runtime_precisions(compiled) -> dict[str, object]:
    """What the CPU plugin chose, from its execution graph: compute layers (convolutions, fully
    connected, matmul) that run in an integer precision, those left in float, and the kernels (oneDNN
    primitive types, which name the ISA: VNNI, AMX) they run on."""
    quantized, floating, kernels = 0, {}, {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str)
        if layer not in COMPUTE_LAYERS:
            continue
        precision = info["runtimePrecision"].astype(str).lower()
        kernel = info["primitiveType"].astype(str) if "primitiveType" in info else "?"
        kernels[kernel] = kernels.get(kernel, 0) + 1
        if precision in INTEGER:
            quantized += 1
        else:
            floating[f"{layer}:{precision}"] = floating.get(f"{layer}:{precision}", 0) + 1
    return {"quantized_ops": quantized, "float_ops": sum(floating.values()), "float_op_types": floating,
            "kernels": kernels}
