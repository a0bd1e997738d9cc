"""`torch.compile` with inductor on the CPU (C++/OpenMP codegen with the system compiler).

Compilation happens on the first call; it is timed as cold start (`compile_s`), not as an iteration.
"""

from __future__ import annotations

import shutil
import time

import torch
from torch import nn

from backends.base import Availability, JobSpec, OpenContext, Session, common_unsupported, module_availability
from backends.torch_eager import DTYPES, torch_session


class TorchCompile:
    name = "torch-compile"
    description = "torch.compile (inductor)"
    devices = ("cpu",)
    precisions = ("fp32", "bf16")

    def availability(self) -> Availability:
        avail = module_availability("torch", "pip install torch")
        if avail.ok and shutil.which("g++") is None and shutil.which("c++") is None:
            return Availability(False, "inductor needs a C++ compiler on PATH", "apt-get install g++")
        return avail

    def unsupported(self, job: JobSpec) -> str | None:
        return common_unsupported(self, job)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        torch.set_num_threads(job.threads)
        compiled = torch.compile(model.to(DTYPES[job.precision]).eval(), backend="inductor", dynamic=False)
        session = torch_session(compiled, job, ctx, {})
        start = time.perf_counter()
        session.run()  # triggers compilation for this input shape
        session.cold["compile_s"] = time.perf_counter() - start
        return session
