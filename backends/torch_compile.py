"""Inductor on the CPU (C++/OpenMP code built with the system compiler) or CUDA (Triton kernels).

On the CPU the model is compiled ahead of time with AOTInductor (`torch.export` +
`aoti_compile_and_package`) and the package is cached, keyed by the weights' hash, torch version,
precision, batch and input size. Every measurement process then loads the same compiled code in
milliseconds instead of re-tracing and re-compiling for 5-50 s, which is what lets a job have several
processes; the kernels are those `torch.compile` generates, without its Python guard checks.

On CUDA the model goes through `torch.compile` itself (fullgraph, static shapes), with Inductor's
FX-graph and Triton caches kept in the artifact cache: the first process (or `bench prepare`) compiles,
the others hit the cache. Why not AOTInductor there: on the borrowed H200 (torch 2.11.0+cu130, Triton
3.6) every AOTInductor CUDA package compiled but crashed the process when loaded (SIGSEGV inside
`AOTIModelContainerRunnerCuda`, in a fresh process as well as the compiling one), while `torch.compile`
of the same model compiled in 8.8 s and matched eager within 6e-5. `compile_s` is recorded when a
process compiled (for CUDA: the first call, cache hit or not, with `inductor_cache_hit`), `load_s` for
AOTInductor packages.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from backends.artifact_cache import cached, recorded_sha256, remembered
from backends.base import Availability, JobSpec, OpenContext, Session, module_availability
from backends.calibration import require
from backends.config import BackendConfig, choices
from backends.cpu_isa import reduce_range
from backends.torch_cuda import CUDA_DTYPES, strict_fp32, torch_cuda_session
from backends.torch_eager import DTYPES, TorchEager, torch_session
from backends.torch_quantize import INDUCTOR_CONFIGS
from backends.torch_quantize import INSTALL as TORCHAO_INSTALL

# Every CPU package's generated kernels open a profiler range (`RECORD_FUNCTION`, one branch when no
# profiler is on), so `bench profile` sees them in the very package `bench run` times.
PACKAGE_CONFIGS = {"cpp.enable_kernel_profile": True}


@dataclass(frozen=True)
class TorchCompileConfig(BackendConfig):
    """int8 (PT2E) settings; fp32 has no options yet."""

    reduce_range: str = choices("auto", "on", "off", help="X86InductorQuantizer: 7-bit activations; auto: on where the CPU "
                                "has no VNNI/AMX (its int8 kernels saturate 16-bit sums otherwise)")


def package_path(ctx: OpenContext, job: JobSpec, extra: str = "") -> Path:
    """Keyed by all that changes the compiled code: weights, torch, precision, shape, layout, device (and
    for int8 the calibration, quantizer settings and torchao's version, in `extra`)."""
    key = (f"{ctx.weights_hash}|{torch.__version__}|{job.precision}|{job.batch}|{job.input_size}|{job.layout}|{job.device}"
           f"|{sorted(PACKAGE_CONFIGS.items())}{extra}")
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = job.model.replace(":", "_").replace("/", "_")
    return ctx.cache_dir / "aoti" / f"{safe}-{job.device}-{job.precision}-b{job.batch}-{job.input_size}-{digest}.pt2"


class TorchCompile(TorchEager):
    """Eager's devices, precisions and session; compiled code instead of the eager module."""

    name = "torch-compile"
    # Inductor hands 1x1 convolutions and GEMMs to the same oneDNN / BLAS kernels as eager, whose probe covers them
    # (probing a compiled package would cost a compile per sweep)
    peak_probe = False
    profiler = "torch.profiler (Inductor's generated kernels and the library calls they make)"
    description = "Inductor (AOTInductor package on the CPU, torch.compile on CUDA; int8 by PT2E on the CPU)"
    precisions = ("fp32", "bf16", "fp16", "int8")
    layer_errors_by = "PT2E's numeric debugger (torchao.quantization.pt2e: prepare_for_propagation_comparison, compare_results)"
    config = TorchCompileConfig
    preload = ("torch._inductor",)  # imported once by the sweep's fork server, not in every process

    def build_env(self, cores: int) -> dict[str, str]:
        """`bench prepare` runs builds side by side: each Inductor compile pool gets its share of the cores."""
        return {"TORCHINDUCTOR_COMPILE_THREADS": str(cores)}

    def availability(self) -> Availability:
        avail = super().availability()
        if avail.ok and shutil.which("g++") is None and shutil.which("c++") is None:
            return Availability(False, "inductor needs a C++ compiler on PATH", "apt-get install g++")
        return avail

    def unsupported(self, job: JobSpec) -> str | None:
        if job.precision != "int8":
            return super().unsupported(job)
        if job.device != "cpu" or job.layout != "nchw":
            return "int8 on torch-compile is PT2E with the x86 Inductor quantizer: CPU, NCHW only"
        if not module_availability("torchao", TORCHAO_INSTALL).ok:
            return f"int8 on torch-compile needs PT2E from torchao; to fix: {TORCHAO_INSTALL}"
        return None

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        torch.set_num_threads(job.threads)
        if job.precision == "int8":
            return self._open_int8(model, job, ctx)
        fmt = torch.channels_last if job.layout == "nhwc" else torch.contiguous_format
        if job.device == "cuda":
            strict_fp32()
            compiled, cold = jit_compile(model, job, ctx, CUDA_DTYPES[job.precision], fmt)
            session = torch_cuda_session(compiled, job, ctx, cold)
            session.artifact = {"path": str(inductor_cache_dir(ctx)), "format": "inductor-cache"}
            return session
        path = package_path(ctx, job)
        cold: dict[str, float] = {"compile_s": 0.0}
        dtype = DTYPES[job.precision]

        def build(tmp: Path) -> None:
            example = torch.from_numpy(ctx.example).to(dtype=dtype).contiguous(memory_format=fmt)
            with torch.inference_mode():
                module = model.to(dtype=dtype, memory_format=fmt).eval()
                program = torch.export.export(module, (example,))
                torch._inductor.aoti_compile_and_package(program, package_path=str(tmp), inductor_configs=PACKAGE_CONFIGS)

        start = time.perf_counter()
        if cached(path, build):
            cold["compile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        compiled = torch._inductor.aoti_load_package(str(path))
        cold["load_s"] = time.perf_counter() - start
        session = torch_session(compiled, job, ctx, cold)
        session.artifact = {"path": str(path), "sha256": recorded_sha256(path), "format": "aoti-package"}
        return session

    def _open_int8(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        """PT2E-quantized, then packaged ahead of time like fp32 (with Inductor's freezing)."""
        from backends.torch_quantize import layer_errors, quantize_pt2e, tool_version

        config: TorchCompileConfig = job.config(self)
        calibration = require(ctx.calibration, self.name)
        reduced = reduce_range(config.reduce_range)
        recipe = job.recipe()
        path = package_path(ctx, job, f"|{calibration.digest}|{config.digest()}|{reduced}|{tool_version()}"
                                      + (f"|{recipe.digest()}" if recipe.layers() else ""))
        graph: dict = {}
        cold: dict[str, float] = {"quantize_s": 0.0, "compile_s": 0.0}
        example = torch.from_numpy(ctx.example)

        def build(tmp: Path) -> None:
            start = time.perf_counter()
            converted, found = quantize_pt2e(model, example, calibration, job.batch, reduced, recipe.layers())
            graph.update(found)
            cold["quantize_s"] = time.perf_counter() - start
            with torch.no_grad():
                program = torch.export.export(converted, (example,))
                torch._inductor.aoti_compile_and_package(program, package_path=str(tmp),
                                                         inductor_configs={**PACKAGE_CONFIGS, **INDUCTOR_CONFIGS})

        start = time.perf_counter()
        if cached(path, build):
            cold["compile_s"] = time.perf_counter() - start - cold["quantize_s"]
        start = time.perf_counter()
        compiled = torch._inductor.aoti_load_package(str(path))
        cold["load_s"] = time.perf_counter() - start
        session = torch_session(compiled, job, ctx, cold)
        session.artifact = {"path": str(path), "sha256": recorded_sha256(path), "format": "aoti-package"}
        session.layer_errors = lambda inputs: layer_errors(model, example, calibration, job.batch, reduced,
                                                           recipe.layers(), inputs)
        session.info["quantization"] = {
            "tool": tool_version(), "format": "PT2E (X86InductorQuantizer) + AOTInductor, freezing",
            "per_channel": True, "reduce_range": reduced, "calibration": calibration.describe(),
            "graph": remembered(path, "graph", lambda: graph or None)}  # counted when this process built it
        return session


def inductor_cache_dir(ctx: OpenContext) -> Path:
    """Inductor keys its FX-graph and Triton caches by graph, torch version, device and options itself."""
    return ctx.cache_dir / "inductor"


def jit_compile(model: nn.Module, job: JobSpec, ctx: OpenContext, dtype: torch.dtype,
                fmt: torch.memory_format) -> tuple[nn.Module, dict[str, float]]:
    """`torch.compile(fullgraph=True, dynamic=False)` with Inductor's caches in the artifact cache, compiled
    now by one call on the example (so no timed call compiles); `compile_s` is that call's time."""
    from torch._dynamo.utils import counters

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(inductor_cache_dir(ctx))  # read by Inductor at each compile
    module = model.to(device=job.device, dtype=dtype, memory_format=fmt).eval()
    compiled = torch.compile(module, fullgraph=True, dynamic=False)
    example = torch.from_numpy(ctx.example).to(device=job.device, dtype=dtype).contiguous(memory_format=fmt)
    hits = counters["inductor"]["fxgraph_cache_hit"]
    start = time.perf_counter()
    with torch.inference_mode():
        compiled(example)
    if job.device == "cuda":
        torch.cuda.synchronize()
    cold = {"compile_s": time.perf_counter() - start,
            "inductor_cache_hit": float(counters["inductor"]["fxgraph_cache_hit"] > hits)}
    return compiled, cold
