"""What a runtime's own profiler saw of a few inferences, in the runtime's own terms.

A session may offer `profile(n)`: n inferences of the same artifact it times, each under the runtime's
profiler (ONNX Runtime's session profiling, OpenVINO's performance counters, `torch.profiler`,
TensorRT's `IProfiler`, Core ML's `MLComputePlan`), returned as each inference's ops. A backend only
reports what ran; naming the ops in the model's terms, classifying and summarizing them is
`harness.profile`'s. The torch profiler's use is here because eager, compiled and CUDA sessions share it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from torch import nn

PROFILE_WARMUP = 3  # profiled inferences run first and dropped (first-run allocations, lazy init)
RANGE = "onebench.layer::"  # the record_function ranges the module hooks open, one per module call


@dataclass(frozen=True)
class OpTime:
    """One op (node, layer, kernel) of one inference."""

    name: str  # the runtime's node, layer or kernel name
    op: str  # its type as the runtime names it (FusedConv, Convolution, aten::conv2d, cpp_fused_relu)
    ms: float
    exec: str = ""  # the kernel, execution type, provider or compute unit that ran it
    layer: str = ""  # the PyTorch module path, where the runtime or the exporter's metadata says it
    shapes: tuple[tuple[int, ...], ...] = ()  # input shapes, where the profiler records them (torch)


@dataclass
class Profiled:
    """`n` profiled inferences: each one's ops and its wall time on the host clock."""

    tool: str  # the profiler and its version
    inferences: list[list[OpTime]]
    wall_ms: list[float]
    estimated: bool = False  # the ms are a static cost model's shares of one inference, not measured times
    notes: list[str] = field(default_factory=list)


def timed(run: Callable[[], None]) -> float:
    """One call's wall time in ms."""
    start = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - start) / 1e6


@contextlib.contextmanager
def module_ranges(model: nn.Module) -> Iterator[None]:
    """Each submodule's call wrapped in a `record_function` range named by its path, so every aten op the
    profiler records has the module it ran in as its parent range (the hooks are removed afterwards)."""
    from torch.autograd.profiler import record_function

    open_ranges: list[record_function] = []
    handles = []

    def enter(name: str) -> Callable:
        def hook(module: nn.Module, args: object) -> None:
            scope = record_function(RANGE + name)
            scope.__enter__()
            open_ranges.append(scope)
        return hook

    def leave(module: nn.Module, args: object, output: object) -> None:
        if open_ranges:
            open_ranges.pop().__exit__(None, None, None)

    for name, module in model.named_modules():
        if name:  # the root's own ops are the ones without a range
            handles += [module.register_forward_pre_hook(enter(name)), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def torch_profile(call: Callable[[], None], n: int, model: nn.Module | None = None, cuda: bool = False) -> Profiled:
    """`n` calls, each under its own `torch.profiler` session (CPU, and CUDA kernels on a GPU). With `model`
    (eager), ops are attributed to the module they ran in; without (a compiled package), the rows are
    the top-level calls: Inductor's generated kernels and the library calls (convolutions, GEMMs) it makes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    inferences, walls = [], []
    with module_ranges(model) if model is not None else contextlib.nullcontext():
        for i in range(PROFILE_WARMUP + n):
            with profile(activities=activities, record_shapes=True) as prof:
                wall = timed(lambda: (call(), torch.cuda.synchronize() if cuda else None))
            if i >= PROFILE_WARMUP:
                walls.append(wall)
                inferences.append(torch_ops(prof.events(), cuda))
    return Profiled(f"torch.profiler {torch.__version__}", inferences, walls)


_SUFFIX = re.compile(r"^graph_\d+_|_\d+$")


def torch_ops(events: list, cuda: bool) -> list[OpTime]:
    """The rows of one profiled inference: each op called directly inside a module's range (or at the top
    level), with its time including the ops it called, and the innermost library op as its kernel."""
    rows = []
    for event in events:
        parent = event.cpu_parent
        if event.name.startswith(RANGE) or (parent is not None and not parent.name.startswith(RANGE)):
            continue
        if event.name.startswith(("[memory]", "ProfilerStep", "cuda")):
            continue
        innermost = event
        while innermost.cpu_children:
            innermost = max(innermost.cpu_children, key=lambda e: e.cpu_time_total)
        shaped = next((e for e in _walk(event) if "convolution" in e.name and e.input_shapes), event)
        us = event.device_time_total if cuda else event.cpu_time_total
        rows.append(OpTime(
            name=event.name, op=_SUFFIX.sub("", event.name), ms=us / 1e3,
            exec=innermost.name if innermost is not event else "",
            layer=parent.name[len(RANGE):] if parent is not None else "",
            shapes=tuple(tuple(s) for s in (shaped.input_shapes or ()) if isinstance(s, list | tuple))))
    return rows


def _walk(event) -> Iterator:
    yield event
    for child in event.cpu_children:
        yield from _walk(child)
