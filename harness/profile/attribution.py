"""Module paths for a compiled package's convolution calls, which carry none.

An AOTInductor package calls the convolution library once per `Conv2d` of the model, in the order the
model runs them, with the module's weight. So the i-th convolution call of an inference is the i-th
`Conv2d` the eager model calls, and the weight shape the profiler recorded must be that module's:
only when every call's shape matches its module's are the layers assigned (a reordered or merged
graph keeps its calls unnamed rather than misnamed).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from backends.profiling import OpTime, Profiled
from harness.profile.kinds import CONV, op_kind


def conv_order(model: nn.Module, example: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """The model's Conv2d calls in execution order: (module path, weight shape)."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    handles = [module.register_forward_pre_hook(lambda m, args, name=name: calls.append((name, tuple(m.weight.shape))))
               for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _is_conv_call(op: OpTime) -> bool:
    return not op.layer and op_kind(op.op) == CONV and len(op.shapes) >= 2 and len(op.shapes[1]) == 4


def by_order(profiled: Profiled, order: list[tuple[str, tuple[int, ...]]]) -> Profiled:
    """`profiled` with its unnamed convolution calls named by `order`, inference by inference, where the
    count and every weight shape match; otherwise unchanged."""
    named = []
    for ops in profiled.inferences:
        calls = [i for i, op in enumerate(ops) if _is_conv_call(op)]
        if not calls or len(calls) != len(order) or any(ops[i].shapes[1] != shape for i, (_, shape) in zip(calls, order)):
            named.append(ops)
            continue
        layers = {i: path for i, (path, _) in zip(calls, order)}
        named.append([dataclasses.replace(op, layer=layers[i]) if i in layers else op for i, op in enumerate(ops)])
    return dataclasses.replace(profiled, inferences=named)
