"""PyTorch eager: on the CPU with `torch.inference_mode` and the job's threads; on CUDA through
`backends.torch_cuda` (both timing boundaries, fp16/bf16, channels-last)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from backends.base import Availability, Backend, JobSpec, OpenContext, Session, common_unsupported, module_availability
from backends.profiling import torch_profile
from backends.torch_cuda import CUDA_DTYPES, cuda_unsupported, torch_cuda_session

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def torch_session(module: nn.Module, job: JobSpec, ctx: OpenContext, cold: dict[str, float]) -> Session:
    """Bind the input once and return a session calling `module` under inference mode. Its profile names
    each op's module where `module` is an eager one (a compiled package has no modules left)."""
    dtype = DTYPES.get(job.precision, torch.float32)  # an int8 module takes float input
    x = torch.from_numpy(ctx.example).to(dtype)

    def run() -> None:
        with torch.inference_mode():
            module(x)

    def infer(inp: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(inp).to(dtype)).float().numpy()

    eager = module if isinstance(module, nn.Module) else None
    return Session(run=run, infer=infer, cold=cold, info={"torch_threads": torch.get_num_threads(),
                                                          "wait_policy": omp_wait_policy()},
                   profile=lambda n: torch_profile(run, n, eager))


def omp_wait_policy() -> str:
    """OpenMP reads OMP_WAIT_POLICY once, at start-up: lockstep starts its processes with PASSIVE."""
    return f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (libgomp spins ~300k times)')}"


def device_unsupported(job: JobSpec) -> str | None:
    """What the CPU or the GPU cannot do of a job (the checks torch and torch-compile share)."""
    if job.device == "cuda":
        return cuda_unsupported(job)
    if job.precision not in DTYPES:
        return f"{job.precision} on the CPU is not a deployment target here; it runs with --device cuda"
    if job.layout != "nchw":
        return "channels-last is offered on CUDA; on the CPU each backend picks its own layout"
    return None


class TorchEager(Backend):
    name = "torch"
    peak_probe = True  # its own GEMM is part of the machine's ceiling (harness.measure.peak)
    profiler = "torch.profiler (aten ops in their modules)"
    description = "PyTorch eager (inference_mode; CPU or CUDA)"
    devices = ("cpu", "cuda")
    precisions = ("fp32", "bf16", "fp16")
    layouts = ("nchw", "nhwc")

    def availability(self) -> Availability:
        return module_availability("torch", "pip install torch")

    def unsupported(self, job: JobSpec) -> str | None:
        return common_unsupported(self, job) or device_unsupported(job)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        if job.device == "cuda":
            fmt = torch.channels_last if job.layout == "nhwc" else torch.contiguous_format
            module = model.to(device="cuda", dtype=CUDA_DTYPES[job.precision], memory_format=fmt).eval()
            return torch_cuda_session(module, job, ctx, {})
        torch.set_num_threads(job.threads)
        return torch_session(model.to(DTYPES[job.precision]).eval(), job, ctx, {})
