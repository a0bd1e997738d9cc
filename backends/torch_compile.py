"""Inductor on the CPU (C++/OpenMP code built with the system compiler) or CUDA (Triton kernels).

The model is compiled ahead of time with AOTInductor (`torch.export` + `aoti_compile_and_package`) and
the package is cached, keyed by the weights' hash, torch version, precision, batch and input size.
Every measurement process then loads the same compiled code in milliseconds instead of re-tracing
and re-compiling for 5-50 s, which is what lets a job have several processes; the kernels are those
`torch.compile` generates, without its Python guard checks. `compile_s` is recorded when a process
compiled, `load_s` always.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from backends.artifact_cache import cached, recorded_sha256
from backends.base import Availability, JobSpec, OpenContext, Session
from backends.torch_cuda import CUDA_DTYPES, strict_fp32, torch_cuda_session
from backends.torch_eager import DTYPES, TorchEager, torch_session


def package_path(ctx: OpenContext, job: JobSpec):
    """Keyed by all that changes the compiled code: weights, torch, precision, shape, layout, device
    (and the GPU model: kernels are tuned and built for one architecture)."""
    gpu = torch.cuda.get_device_name() if job.device == "cuda" else ""
    key = f"{ctx.weights_hash}|{torch.__version__}|{job.precision}|{job.batch}|{job.input_size}|{job.layout}|{job.device}|{gpu}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = job.model.replace(":", "_").replace("/", "_")
    return ctx.cache_dir / "aoti" / f"{safe}-{job.device}-{job.precision}-b{job.batch}-{job.input_size}-{digest}.pt2"


class TorchCompile(TorchEager):
    """Eager's devices, precisions and session; compiled code instead of the eager module."""

    name = "torch-compile"
    description = "Inductor (AOTInductor package; CPU or CUDA)"
    preload = ("torch._inductor",)  # imported once by the sweep's fork server, not in every process

    @staticmethod
    def build_env(cores: int) -> dict[str, str]:
        """`bench prepare` runs builds side by side: each Inductor compile pool gets its share of the cores."""
        return {"TORCHINDUCTOR_COMPILE_THREADS": str(cores)}

    def availability(self) -> Availability:
        avail = super().availability()
        if avail.ok and shutil.which("g++") is None and shutil.which("c++") is None:
            return Availability(False, "inductor needs a C++ compiler on PATH", "apt-get install g++")
        return avail

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        torch.set_num_threads(job.threads)
        path = package_path(ctx, job)
        cold: dict[str, float] = {"compile_s": 0.0}
        cuda = job.device == "cuda"
        if cuda:
            strict_fp32()
        dtype = (CUDA_DTYPES if cuda else DTYPES)[job.precision]
        fmt = torch.channels_last if job.layout == "nhwc" else torch.contiguous_format

        def build(tmp: Path) -> None:
            example = torch.from_numpy(ctx.example).to(device=job.device, dtype=dtype).contiguous(memory_format=fmt)
            with torch.inference_mode():
                module = model.to(device=job.device, dtype=dtype, memory_format=fmt).eval()
                program = torch.export.export(module, (example,))
                torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))

        start = time.perf_counter()
        if cached(path, build):
            cold["compile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        compiled = torch._inductor.aoti_load_package(str(path))
        cold["load_s"] = time.perf_counter() - start
        session = torch_cuda_session(compiled, job, ctx, cold) if cuda else torch_session(compiled, job, ctx, cold)
        session.artifact = {"path": str(path), "sha256": recorded_sha256(path), "format": "aoti-package"}
        return session
