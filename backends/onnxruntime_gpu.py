"""ONNX Runtime on an NVIDIA GPU: the CUDA and TensorRT execution providers (onnxruntime-gpu).

ONNX Runtime falls back to the CPU silently when a provider cannot load (a missing CUDA or TensorRT
library): after creating the session, `check_providers` compares what was requested with
`get_providers()` and a missing one is an error, never a CPU number labelled GPU. Input and output
are bound on the device (I/O binding); ONNX Runtime runs on a stream of ours (`user_compute_stream`)
so CUDA events on that stream time the device boundary, while `run` copies the host input in and
the output back (end-to-end). `onnxruntime` and `onnxruntime-gpu` must never share an environment:
both install the `onnxruntime` module and overwrite each other's files; `conflict` detects it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np
from torch import nn

from backends.artifact_cache import recorded_sha256
from backends.base import Availability, Backend, JobSpec, OpenContext, Session
from backends.calibration import require
from backends.onnx_export import INPUT_NAME, OUTPUT_NAME, export_availability, export_onnx
from backends.onnx_layers import LayerNames, layer_table
from backends.onnx_quantize import TensorRTQdq, quantize_qdq
from backends.ort_profiling import profile_session

INSTALL = "pip uninstall -y onnxruntime && pip install 'onebench[gpu]'"
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")


def installed(dist: str) -> bool:
    try:
        distribution(dist)
        return True
    except PackageNotFoundError:
        return False


def conflict(present: list[str] | None = None) -> str | None:
    """Why the ONNX Runtime install is broken when both wheels are installed, or None."""
    present = [d for d in ORT_DISTRIBUTIONS if installed(d)] if present is None else present
    if all(d in present for d in ORT_DISTRIBUTIONS):
        return ("onnxruntime and onnxruntime-gpu are both installed and overwrite each other's files; keep one: "
                "`pip uninstall -y onnxruntime onnxruntime-gpu` then `pip install 'onebench[gpu]'` (GPU) or "
                "`pip install 'onebench[onnxruntime]'` (CPU)")
    return None


def check_providers(requested: list[str], loaded: list[str]) -> None:
    """Raise when a requested provider is not among those the session actually loaded."""
    missing = [p for p in requested if p not in loaded]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} did not load (the session runs on {', '.join(loaded)}); ONNX Runtime "
                           "fell back without failing: check the CUDA/cuDNN/TensorRT libraries onnxruntime-gpu needs")


def provider_options(provider: str, job: JobSpec, stream_handle: int, cache_dir: str) -> dict[str, str]:
    """Options for the provider: our stream, and for TensorRT precision, workspace and engine cache. int8
    is explicit quantization from the QDQ file's own scales: INT8 enabled, no calibration table."""
    options = {"device_id": "0", "user_compute_stream": str(stream_handle)}
    if provider == "TensorrtExecutionProvider":
        options.update(trt_fp16_enable="True" if job.precision == "fp16" else "False",
                       trt_int8_enable="True" if job.precision == "int8" else "False",
                       trt_max_workspace_size=str(4 << 30), trt_engine_cache_enable="True",
                       trt_engine_cache_path=cache_dir, trt_timing_cache_enable="True")
    return options


class OnnxRuntimeGPU(Backend):
    """One ONNX Runtime GPU execution provider (subclasses pick it)."""

    provider = "CUDAExecutionProvider"
    name = "onnxruntime-cuda"
    profiler = "session profiling (node kernel times; TensorRT's engine is one node)"
    packages = ("onnx", "onnxscript", "onnxruntime-gpu")  # the versions a record of this backend states
    description = "ONNX Runtime, CUDA execution provider"
    devices = ("cuda",)
    precisions = ("fp32", "int8")  # int8: the QDQ file (`backends.onnx_quantize`), as TensorRT reads it
    config = TensorRTQdq

    def availability(self) -> Availability:
        broken = conflict()
        if broken:
            return Availability(False, broken)
        if not installed("onnxruntime-gpu"):
            return Availability(False, "the Python package 'onnxruntime-gpu' is not installed", INSTALL)
        avail = export_availability("onnxruntime", INSTALL)
        if not avail.ok:
            return avail
        import onnxruntime as ort

        if self.provider not in ort.get_available_providers():
            return Availability(False, f"this onnxruntime build has no {self.provider}", INSTALL)
        from backends.torch_cuda import cuda_availability

        cuda = cuda_availability()
        return cuda if not cuda.ok else Availability(True, version=ort.__version__)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        import onnxruntime as ort
        import torch

        from backends.torch_cuda import event_timer

        path, export_s = export_onnx(model, job.model, ctx.weights_hash, job.batch, job.input_size, ctx.cache_dir)
        fp32_path, cold, info = path, {"export_s": export_s}, {}
        if job.precision == "int8":
            path, cold["quantize_s"], info["quantization"] = quantize_qdq(
                path, job.config(self), require(ctx.calibration, self.name), job.batch, ctx.cache_dir,
                job.recipe().layers())
        stream = torch.cuda.Stream()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        trt_cache = ctx.cache_dir / "ort-trt"
        trt_cache.mkdir(parents=True, exist_ok=True)
        requested = [self.provider]
        providers = [(self.provider, provider_options(self.provider, job, stream.cuda_stream, str(trt_cache)))]
        if self.provider == "TensorrtExecutionProvider":  # TensorRT hands the nodes it cannot run to CUDA
            requested.append("CUDAExecutionProvider")
            providers.append(("CUDAExecutionProvider", provider_options("CUDAExecutionProvider", job, stream.cuda_stream, "")))
        start = time.perf_counter()
        sess = ort.InferenceSession(str(path), options, providers=providers)  # TensorRT builds its engine here
        cold["load_s"] = time.perf_counter() - start
        names = LayerNames(layer_table(fp32_path))
        check_providers(requested, sess.get_providers())

        out_shape = [d if isinstance(d, int) else job.batch for d in sess.get_outputs()[0].shape]
        device_in = ort.OrtValue.ortvalue_from_numpy(ctx.example, "cuda", 0)
        device_out = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, np.float32, "cuda", 0)
        on_device = sess.io_binding()
        on_device.bind_ortvalue_input(INPUT_NAME, device_in)
        on_device.bind_ortvalue_output(OUTPUT_NAME, device_out)
        host_out = np.empty(out_shape, dtype=np.float32)
        host_in = ctx.example

        def run() -> None:  # end-to-end: host input in, host output out, synchronized
            device_in.update_inplace(host_in)
            sess.run_with_iobinding(on_device)
            host_out[...] = device_out.numpy()

        def infer(x: np.ndarray) -> np.ndarray:
            return sess.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]

        def twin(profiling: Callable) -> tuple[object, Callable[[], None]]:
            """The same file, options and providers (TensorRT's engine comes from its cache), profiled, bound
            to the same device buffers; each run synchronizes the stream so its trace holds the kernels."""
            profiling(options)
            opened = ort.InferenceSession(str(path), options, providers=providers)
            binding = opened.io_binding()
            binding.bind_ortvalue_input(INPUT_NAME, device_in)
            binding.bind_ortvalue_output(OUTPUT_NAME, device_out)
            return opened, lambda: (opened.run_with_iobinding(binding), stream.synchronize())

        return Session(
            run=run, infer=infer, boundary="end-to-end",
            profile=lambda n: profile_session(twin, n, names, ort.__version__),
            device_timer=event_timer(stream, lambda: sess.run_with_iobinding(on_device)),
            cold=cold,
            artifact={"path": str(path), "sha256": recorded_sha256(path), "format": "onnx"},
            info={"providers": sess.get_providers(), "provider_options": sess.get_provider_options(), **info},
        )


class OnnxRuntimeTensorRT(OnnxRuntimeGPU):
    provider = "TensorrtExecutionProvider"
    name = "onnxruntime-trt"
    description = "ONNX Runtime, TensorRT execution provider"
    precisions = ("fp32", "fp16", "int8")
