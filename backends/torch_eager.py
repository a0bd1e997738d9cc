"""PyTorch eager on the CPU: `torch.inference_mode`, threads from the job."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from backends.base import Availability, JobSpec, OpenContext, Session, common_unsupported, module_availability

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def torch_session(module: nn.Module, job: JobSpec, ctx: OpenContext, cold: dict[str, float]) -> Session:
    """Bind the input once and return a session calling `module` under inference mode."""
    dtype = DTYPES[job.precision]
    x = torch.from_numpy(ctx.example).to(dtype)

    def run() -> None:
        with torch.inference_mode():
            module(x)

    def infer(inp: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(inp).to(dtype)).float().numpy()

    return Session(run=run, infer=infer, cold=cold, info={"torch_threads": torch.get_num_threads()})


class TorchEager:
    name = "torch"
    description = "PyTorch eager (inference_mode)"
    devices = ("cpu",)
    precisions = ("fp32", "bf16")

    def availability(self) -> Availability:
        return module_availability("torch", "pip install torch")

    def unsupported(self, job: JobSpec) -> str | None:
        return common_unsupported(self, job)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        torch.set_num_threads(job.threads)
        return torch_session(model.to(DTYPES[job.precision]).eval(), job, ctx, {})
