"""TensorRT: an engine built from the cached ONNX export with the TensorRT Python API (10.x).

The ONNX parser's errors are reported one by one; the builder config sets the workspace limit and
fp16 on or off, int8 always off. The serialized engine is cached, keyed by the ONNX file's hash, the
TensorRT version, the GPU's name and the precision (an engine is valid for one GPU model and one
TensorRT build). Buffers are allocated once (as torch CUDA tensors, so no second CUDA binding is
needed) and addressed by tensor name; inference is `execute_async_v3` on our stream. Engine build
time is the job's cold start.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from torch import nn

from backends.artifact_cache import cached, recorded_sha256
from backends.base import Availability, Backend, JobSpec, OpenContext, Session, module_availability
from backends.calibration import require
from backends.onnx_export import export_onnx
from backends.onnx_layers import LayerNames, layer_table
from backends.onnx_quantize import TensorRTQdq, quantize_qdq
from backends.profiling import PROFILE_WARMUP, Profiled, timed

INSTALL = "pip install 'onebench[tensorrt]' (needs an NVIDIA GPU and driver)"
WORKSPACE_BYTES = 4 << 30


def engine_key(onnx_sha256: str, trt_version: str, gpu_name: str, precision: str, workspace: int = WORKSPACE_BYTES) -> str:
    """Everything an engine depends on; a change in any of them builds a new engine."""
    return hashlib.sha256(f"{onnx_sha256}|{trt_version}|{gpu_name}|{precision}|{workspace}".encode()).hexdigest()[:20]


def engine_path(cache_dir: Path, model: str, precision: str, key: str) -> Path:
    return cache_dir / "tensorrt" / f"{model.replace(':', '_').replace('/', '_')}-{precision}-{key}.engine"


def parse_errors(parser) -> list[str]:
    return [str(parser.get_error(i)) for i in range(parser.num_errors)]


def build_engine(onnx_file: Path, precision: str, logger) -> bytes:
    """Parse the ONNX file and build a serialized engine; raise with the parser's or builder's errors.

    int8 is explicit quantization: the file is QDQ (`backends.onnx_quantize`, symmetric int8) and TensorRT
    keeps its scales. From TensorRT 10 the network is strongly typed and no precision flag is set (the
    documented way for Q/DQ networks); before 10, the INT8 flag enables the Q/DQ layers."""
    import tensorrt as trt

    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)  # explicit batch
    if precision == "int8" and major >= 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_file).read_bytes()):
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_file.name}: " + "; ".join(parse_errors(parser)))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if major < 10:
            config.set_flag(trt.BuilderFlag.INT8)
    else:
        config.clear_flag(trt.BuilderFlag.INT8)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine for {onnx_file.name} ({precision}); its log says why")
    return bytes(serialized)


class TensorRT(Backend):
    name = "tensorrt"
    profiler = "IProfiler (per-layer times of the built engine)"
    packages = ("onnx", "onnxscript", "tensorrt")  # the versions a record of this backend states
    description = "TensorRT engine (NVIDIA GPU)"
    devices = ("cuda",)
    precisions = ("fp32", "fp16", "int8")
    config = TensorRTQdq

    def availability(self) -> Availability:
        avail = module_availability("tensorrt", INSTALL)
        if not avail.ok:
            return avail
        from backends.torch_cuda import cuda_availability

        cuda = cuda_availability()
        return avail if cuda.ok else cuda

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        import tensorrt as trt
        import torch

        from backends.torch_cuda import event_timer

        onnx_file, export_s = export_onnx(model, job.model, ctx.weights_hash, job.batch, job.input_size, ctx.cache_dir)
        fp32_onnx = onnx_file
        cold, quantization = {"export_s": export_s}, {}
        if job.precision == "int8":
            onnx_file, cold["quantize_s"], quantization = quantize_qdq(
                onnx_file, job.config(self), require(ctx.calibration, self.name), job.batch, ctx.cache_dir,
                job.recipe().layers())
        logger = trt.Logger(trt.Logger.WARNING)
        onnx_sha = recorded_sha256(onnx_file)
        path = engine_path(ctx.cache_dir, job.model, job.precision,
                           engine_key(onnx_sha, trt.__version__, torch.cuda.get_device_name(), job.precision))
        cold["build_s"] = 0.0
        start = time.perf_counter()
        if cached(path, lambda tmp: tmp.write_bytes(build_engine(onnx_file, job.precision, logger))):
            cold["build_s"] = time.perf_counter() - start
        start = time.perf_counter()
        engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
        context = engine.create_execution_context()
        cold["load_s"] = time.perf_counter() - start

        buffers: dict[str, torch.Tensor] = {}
        inputs, outputs = [], []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(engine.get_tensor_dtype(name)))).dtype
            buffers[name] = torch.empty(tuple(engine.get_tensor_shape(name)), dtype=dtype, device="cuda")
            context.set_tensor_address(name, buffers[name].data_ptr())
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
        (dev_in,), (dev_out,) = [buffers[n] for n in inputs], [buffers[n] for n in outputs]
        stream = torch.cuda.Stream()
        host_in = torch.from_numpy(ctx.example).pin_memory()
        host_out = torch.empty(dev_out.shape, dtype=dev_out.dtype).pin_memory()

        def execute() -> None:
            if not context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")

        def run() -> None:  # end-to-end
            with torch.cuda.stream(stream):
                dev_in.copy_(host_in, non_blocking=True)
                execute()
                host_out.copy_(dev_out, non_blocking=True)
            stream.synchronize()

        def infer(x: np.ndarray) -> np.ndarray:
            with torch.cuda.stream(stream):
                dev_in.copy_(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
                execute()
                out = dev_out.float().cpu()
            stream.synchronize()
            return out.numpy()

        names = LayerNames(layer_table(fp32_onnx))

        def profile(n: int) -> Profiled:
            """A twin execution context on the same buffers with an `IProfiler`: TensorRT reports each fused
            layer's time once the inference is done (its names join the ONNX nodes it fused with ` + `)."""
            times: list[tuple[str, float]] = []

            class LayerTimes(trt.IProfiler):
                def __init__(self) -> None:
                    trt.IProfiler.__init__(self)

                def report_layer_time(self, layer_name: str, ms: float) -> None:
                    times.append((layer_name, ms))

            twin = engine.create_execution_context()
            for name, buffer in buffers.items():
                twin.set_tensor_address(name, buffer.data_ptr())
            twin.profiler = LayerTimes()
            inferences, walls = [], []
            for i in range(PROFILE_WARMUP + n):
                times.clear()
                wall = timed(lambda: (twin.execute_async_v3(stream.cuda_stream), stream.synchronize()))
                if i >= PROFILE_WARMUP:
                    walls.append(wall)
                    inferences.append([names.op_time(layer, names.op(layer) or "TensorRT layer", ms, "TensorRT")
                                       for layer, ms in times])
            return Profiled(f"tensorrt {trt.__version__} IProfiler", inferences, walls)

        return Session(
            run=run, infer=infer, boundary="end-to-end", device_timer=event_timer(stream, execute), cold=cold,
            profile=profile,
            artifact={"path": str(path), "sha256": recorded_sha256(path), "format": "tensorrt-engine",
                      "onnx_sha256": onnx_sha},
            info={"tensorrt": trt.__version__, "device": torch.cuda.get_device_name(), "workspace_bytes": WORKSPACE_BYTES,
                  "io": {"inputs": inputs, "outputs": outputs},
                  **({"quantization": quantization} if quantization else {})},
            memory=lambda: {"engine_device_memory_mb": getattr(engine, "device_memory_size_v2",
                                                               getattr(engine, "device_memory_size", 0)) / 2**20},
        )
