"""ONNX Runtime, CPU execution provider, on the cached ONNX export (int8: its QDQ quantization of it).

Graph optimization ALL by default, `intra_op_num_threads` = the job's threads, sequential execution,
and the input and output bound once as OrtValues (I/O binding), so an iteration copies nothing. int8 is
static QDQ quantization with per-channel weights (`backends.onnx_quantize`), calibration recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from backends.artifact_cache import recorded_sha256
from backends.base import Availability, Backend, JobSpec, OpenContext, Session
from backends.calibration import require
from backends.config import choices
from backends.onnx_diagnosis import layer_errors
from backends.onnx_export import INPUT_NAME, OUTPUT_NAME, checked_graph, export_availability, export_onnx
from backends.onnx_layers import LayerNames, layer_table
from backends.onnx_quantize import QdqSettings, ort_kernels, quantize_qdq
from backends.ort_profiling import profile_session

INSTALL = "pip install 'onebench[onnxruntime]'"
OPTIMIZATION = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
                "disabled": "ORT_DISABLE_ALL"}


@dataclass(frozen=True)
class OnnxRuntimeConfig(QdqSettings):
    """Session options, and (int8) the quantizer's settings."""

    graph_optimization: str = choices("all", "extended", "basic", "disabled", help="SessionOptions.graph_optimization_level")


class OnnxRuntimeCPU(Backend):
    name = "onnxruntime"
    peak_probe = True  # its own GEMM is part of the machine's ceiling (harness.measure.peak)
    profiler = "session profiling (node kernel times)"
    layer_errors_by = "onnxruntime.quantization.qdq_loss_debug"
    ranks_layers = True  # its diagnosis names graph nodes by module: the candidates of every runtime's int8 search
    packages = ("onnx", "onnxscript", "onnxruntime")  # the versions a record of this backend states
    description = "ONNX Runtime (CPU EP)"
    devices = ("cpu",)
    precisions = ("fp32", "int8")
    config = OnnxRuntimeConfig
    preload = ("onnxruntime",)  # imported once by the sweep's fork server, not in every process

    def availability(self) -> Availability:
        from backends.onnxruntime_gpu import conflict

        broken = conflict()
        return Availability(False, broken) if broken else export_availability("onnxruntime", INSTALL)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        import onnxruntime as ort

        path, export_s = export_onnx(model, job.model, ctx.weights_hash, job.batch, job.input_size, ctx.cache_dir)
        graph, fp32_path = checked_graph(path, job.model, job.form), path
        config: OnnxRuntimeConfig = job.config(self)
        cold, info = {"export_s": export_s}, {}
        if job.precision == "int8":
            path, cold["quantize_s"], info["quantization"] = quantize_qdq(
                path, config, require(ctx.calibration, self.name), job.batch, ctx.cache_dir, job.recipe().layers())
        level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION[config.graph_optimization])
        if job.precision == "int8":
            info["quantization"]["runtime"] = ort_kernels(path, level)
        wait = "session.intra_op.allow_spinning=0" if ctx.passive_wait else "spinning (ONNX Runtime default)"

        def session(profiling: Callable | None = None) -> tuple[object, Callable[[], None]]:
            """A session of the file with the job's options (`profiling` turns the profiler on in a twin)."""
            options = ort.SessionOptions()
            options.graph_optimization_level = level
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.intra_op_num_threads = job.threads
            options.inter_op_num_threads = 1
            if ctx.passive_wait:  # a resident neighbour's spinning pool would take the active side's core
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            if profiling:
                profiling(options)
            opened = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            out_shape = [d if isinstance(d, int) else job.batch for d in opened.get_outputs()[0].shape]
            bound = [ort.OrtValue.ortvalue_from_numpy(ctx.example), ort.OrtValue.ortvalue_from_numpy(np.empty(out_shape, np.float32))]
            binding = opened.io_binding()
            binding.bind_ortvalue_input(INPUT_NAME, bound[0])
            binding.bind_ortvalue_output(OUTPUT_NAME, bound[1])

            def run() -> None:
                opened.run_with_iobinding(binding)

            run.keep_alive = bound  # type: ignore[attr-defined] - the binding points into these arrays
            return opened, run

        start = time.perf_counter()
        sess, run = session()
        cold["load_s"] = time.perf_counter() - start
        names = LayerNames(layer_table(fp32_path))

        def infer(x: np.ndarray) -> np.ndarray:
            return sess.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]

        return Session(
            run=run, infer=infer, cold=cold,
            profile=lambda n: profile_session(session, n, names, ort.__version__),
            layer_errors=(lambda inputs: layer_errors(fp32_path, path, inputs)) if job.precision == "int8" else None,
            artifact={"path": str(path), "sha256": recorded_sha256(path), "format": "onnx"},
            info={"providers": sess.get_providers(), "intra_op_num_threads": job.threads, "wait_policy": wait,
                  "graph": graph, **info},
        )
