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
INFERENCE = "onebench.inference::"  # the range around each profiled inference


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
    """`n` calls (after the warm-up) in one `torch.profiler` session (CPU, and CUDA kernels on a GPU), each
    in its own range. With `model` (eager), ops are attributed to the module they ran in; without (a
    compiled package), the rows are the top-level calls: Inductor's generated kernels and the library calls
    (convolutions, GEMMs) it makes."""
    import torch
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    walls = []
    with module_ranges(model) if model is not None else contextlib.nullcontext():
        # shapes only where no module says what an op is (they cost the profiler a copy per op)
        with profile(activities=activities, record_shapes=model is None) as prof:
            for i in range(PROFILE_WARMUP + n):
                with record_function(f"{INFERENCE}{i}"):
                    walls.append(timed(lambda: (call(), torch.cuda.synchronize() if cuda else None)))
    inferences: list[list[OpTime]] = [[] for _ in walls]
    for event in prof.events():
        parent = event.cpu_parent
        if parent is None or not parent.name.startswith((RANGE, INFERENCE)) or event.name.startswith(RANGE):
            continue
        root = parent
        while root.cpu_parent is not None:
            root = root.cpu_parent
        if root.name.startswith(INFERENCE):
            inferences[int(root.name[len(INFERENCE):])].append(torch_op(event, cuda))
    return Profiled(f"torch.profiler {torch.__version__}", inferences[PROFILE_WARMUP:], walls[PROFILE_WARMUP:])


_SUFFIX = re.compile(r"^graph_\d+_|_\d+$")


def torch_op(event, cuda: bool) -> OpTime:
    """A row: an op called directly inside a module's range (or the inference's), its time including what
    it called, and as its kernel the call inside it that holds most of its time (aten::conv2d ->
    aten::mkldnn_convolution), followed while one call holds at least half."""
    kernel = event
    while kernel.cpu_children:
        inner = max(kernel.cpu_children, key=lambda e: e.cpu_time_total)
        if inner.cpu_time_total < 0.5 * kernel.cpu_time_total:
            break
        kernel = inner
    shaped = next((e for e in _walk(event) if "convolution" in e.name and e.input_shapes), event)
    parent = event.cpu_parent.name
    return OpTime(name=event.name, op=_SUFFIX.sub("", event.name),
                  ms=(event.device_time_total if cuda else event.cpu_time_total) / 1e3,
                  exec=kernel.name if kernel is not event else "",
                  layer=parent[len(RANGE):] if parent.startswith(RANGE) else "",
                  shapes=tuple(tuple(s) for s in (shaped.input_shapes or ()) if isinstance(s, list | tuple)))


def _walk(event) -> Iterator:
    yield event
    for child in event.cpu_children:
        yield from _walk(child)
