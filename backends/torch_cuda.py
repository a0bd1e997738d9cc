"""PyTorch on an NVIDIA GPU: eager, compiled, or a captured CUDA graph, with both timing boundaries.

A session's `run` is the end-to-end boundary: the pinned host input is copied to the device, the
model runs, the output is copied back to pinned host memory, and the stream is synchronized. Its
`device_timer` is the device boundary: CUDA events recorded on the same stream around the model
alone (input already on the device), read after the end event completes. The two are separate jobs
and never compared with each other. CUDA-graph replay captures the model once on a static input
buffer and replays it, removing the per-kernel launch cost eager pays from Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from backends.base import Availability, Backend, JobSpec, OpenContext, Session, common_unsupported
from backends.profiling import torch_profile

CUDA_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
GRAPH_WARMUP = 3  # eager runs on a side stream before capture (cuDNN autotuning, lazy allocations)


def cuda_unsupported(job: JobSpec) -> str | None:
    """Why this torch cannot run `job` on CUDA here, or None."""
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return f"no CUDA GPU is visible (torch.cuda.is_available() is False; this torch is {build})"
    if job.precision == "bf16" and not torch.cuda.is_bf16_supported():
        return f"{torch.cuda.get_device_name()} has no native bf16"
    return None


def cuda_availability() -> Availability:
    reason = cuda_unsupported(JobSpec(model="", backend="", device="cuda"))
    return Availability(False, reason) if reason else Availability(True, version=torch.__version__)


def strict_fp32() -> None:
    """fp32 means fp32: PyTorch lets cuDNN convolutions run in TF32 (a 10-bit mantissa) by default, which
    would make an fp32 job a TF32 one under the fp32 label. Set before compiling too (inductor reads it)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def event_timer(stream: torch.cuda.Stream, forward: Callable[[], object]) -> Callable[[], int]:
    """One inference timed by CUDA events on `stream`, in ns (the device boundary)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed() -> int:
        with torch.inference_mode(), torch.cuda.stream(stream):  # entered before the start event
            start.record(stream)
            forward()
            end.record(stream)
        end.synchronize()
        return int(start.elapsed_time(end) * 1e6)

    return timed


def torch_cuda_session(module: nn.Module | Callable, job: JobSpec, ctx: OpenContext, cold: dict[str, float],
                       graph: bool = False) -> Session:
    """Bind the input on the device once and return a session with both boundaries."""
    strict_fp32()
    dtype = CUDA_DTYPES[job.precision]
    fmt = torch.channels_last if job.layout == "nhwc" else torch.contiguous_format
    device = torch.device("cuda")
    stream = torch.cuda.Stream()
    host_in = torch.from_numpy(ctx.example).pin_memory()
    dev_in = torch.empty(host_in.shape, dtype=dtype, device=device).contiguous(memory_format=fmt)
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode(), torch.cuda.stream(stream):
        dev_in.copy_(host_in)
        probe = module(dev_in)
    host_out = torch.empty(probe.shape, dtype=probe.dtype).pin_memory()
    forward: Callable[[], torch.Tensor] = lambda: module(dev_in)  # noqa: E731

    if graph:
        cuda_graph = torch.cuda.CUDAGraph()
        start = time.perf_counter()
        with torch.inference_mode():
            with torch.cuda.stream(stream):
                for _ in range(GRAPH_WARMUP):
                    module(dev_in)
            stream.synchronize()
            with torch.cuda.graph(cuda_graph, stream=stream):
                static_out = module(dev_in)
        cold["capture_s"] = time.perf_counter() - start  # side-stream warm-up runs + capture

        def forward() -> torch.Tensor:
            cuda_graph.replay()
            return static_out

    def on_device() -> None:
        with torch.inference_mode(), torch.cuda.stream(stream):
            forward()

    def run() -> None:
        with torch.inference_mode(), torch.cuda.stream(stream):
            dev_in.copy_(host_in, non_blocking=True)
            host_out.copy_(forward(), non_blocking=True)
        stream.synchronize()

    def infer(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.cuda.stream(stream):
            dev_in.copy_(torch.from_numpy(x))
            out = forward().float().cpu()
        stream.synchronize()
        return out.numpy()

    def peak_memory() -> dict[str, float]:
        return {"torch_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20}

    stream.synchronize()
    # a replayed CUDA graph is one launch to the profiler: no per-op profile
    eager = module if isinstance(module, nn.Module) and not hasattr(module, "_orig_mod") else None  # not torch.compile's
    profile = None if graph else lambda n: torch_profile(on_device, n, eager, cuda=True)
    return Session(run=run, infer=infer, cold=cold, boundary="end-to-end", device_timer=event_timer(stream, forward),
                   profile=profile,
                   info={"device": torch.cuda.get_device_name(), "dtype": str(dtype), "layout": job.layout,
                         "cuda_graph": graph, "tf32": torch.backends.cudnn.allow_tf32},
                   memory=peak_memory)


class TorchCudaGraph(Backend):
    """Eager PyTorch captured once into a CUDA graph and replayed."""

    name = "torch-cudagraph"
    description = "PyTorch CUDA-graph replay (NVIDIA GPU)"
    devices = ("cuda",)
    precisions = tuple(CUDA_DTYPES)

    def availability(self) -> Availability:
        return cuda_availability()

    def unsupported(self, job: JobSpec) -> str | None:
        return common_unsupported(self, job) or cuda_unsupported(job)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        fmt = torch.channels_last if job.layout == "nhwc" else torch.contiguous_format
        module = model.to(device="cuda", dtype=CUDA_DTYPES[job.precision], memory_format=fmt).eval()
        return torch_cuda_session(module, job, ctx, {}, graph=True)
