"""Op kinds in the model's terms, the same on every runtime: dense, depthwise and pointwise convolution,
linear, squeeze-excite, attention, branch add, each activation, batch norm, pooling, reorders.

An op's kind comes from the module it ran in where it is known (a `Conv2d`'s groups and kernel say
depthwise or pointwise; anything inside a squeeze-excite or attention module is that), else from the
runtime's op type (an OpenVINO Reorder, ONNX Runtime's ReorderOutput, an Inductor kernel named after
the ops it fused), else from the shapes the profiler recorded (a convolution call's weight). FLOPs are
counted per module by `torch.utils.flop_counter`, so an op kind's GFLOP/s is the model's FLOPs of that
kind over the time the runtime spent on it.
"""

from __future__ import annotations

import collections
import re

import torch
from torch import nn

CONV_DENSE, CONV_DW, CONV_PW, CONV_GROUPED, CONV = (
    "conv (dense)", "conv (depthwise)", "conv (pointwise)", "conv (grouped)", "conv")
LINEAR, SE, ATTENTION, ADD, MUL = "linear", "squeeze-excite", "attention", "add (residual/branch)", "mul"
BATCHNORM, POOL, REORDER, QUANTIZE, OTHER = "batchnorm", "pool", "reorder/layout", "quantize/dequantize", "other"
ELEMENTWISE = "fused elementwise"  # a runtime's own fusion of elementwise ops (OpenVINO's snippets `Subgraph`)
COMPUTE = (CONV_DENSE, CONV_DW, CONV_PW, CONV_GROUPED, CONV, LINEAR)

# Module class names (any ancestor) whose ops all count as that kind.
_CONTEXTS = ((re.compile(r"squeeze.?excit|^se(module|block|layer)?$", re.I), SE),
             (re.compile(r"attention|former", re.I), ATTENTION))
_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "clip": "relu6", "hardtanh": "relu6", "sigmoid": "sigmoid",
                "hardsigmoid": "hardsigmoid", "hardswish": "hardswish", "silu": "silu", "swish": "silu",
                "gelu": "gelu", "tanh": "tanh", "prelu": "prelu", "leakyrelu": "leakyrelu", "softmax": "softmax",
                "hyperfunc": "dynamic relu"}
_OPS = [  # (words in a runtime op type, lower-cased, separators removed) -> kind; first match wins
    (("reorder", "transpose", "reshape", "flatten", "squeeze", "unsqueeze", "memcpy", "copy", "view", "permute",
      "contiguous", "as_strided"), REORDER),
    (("quantizelinear", "dequantizelinear", "fakequantize", "quantizeper", "dequantize"), QUANTIZE),
    (("batchnorm", "batch_norm"), BATCHNORM),
    (("conv",), CONV),
    (("gemm", "matmul", "fullyconnected", "linear", "addmm", "innerproduct"), LINEAR),
    (("reducemean", "averagepool", "avgpool", "avg_pool", "maxpool", "max_pool", "pooling", "mean"), POOL),
    (("add", "sum"), ADD),
    (("mul", "multiply"), MUL),
    (("subgraph", "eltwise"), ELEMENTWISE),
]


_FUSED = ((("add",), ADD), (("mul",), MUL), (("mean", "avg", "pool"), POOL))


def _activation(word: str) -> str | None:
    return _ACTIVATIONS.get(re.sub(r"[^a-z0-9]", "", word.lower()))


def op_kind(op: str) -> str | None:
    """The kind a runtime op type names by itself, or None. A generated kernel (`cpp_fused_add_relu`) is
    named after what it fused: an add, else a mul, else a pooling, else its activation decides."""
    low = op.lower().removeprefix("aten::").removeprefix("qlinear").replace(" ", "")
    if low.startswith(("cpp_fused_", "triton_")):
        words = low.split("_")[2:]
        fused = next((kind for names, kind in _FUSED if any(w in names for w in words)), None)
        act = next((a for w in words if (a := _activation(w))), None)
        return fused or (f"activation ({act})" if act else None)
    act = _activation(low)
    if act:
        return f"activation ({act})"
    return next((kind for words, kind in _OPS if any(w in low for w in words)), None)


def conv_kind(in_channels: int, groups: int, kernel: tuple[int, ...]) -> str:
    if groups > 1 and groups == in_channels:
        return CONV_DW
    if groups > 1:
        return CONV_GROUPED
    return CONV_PW if all(k == 1 for k in kernel) else CONV_DENSE


def shapes_kind(shapes: tuple[tuple[int, ...], ...]) -> str | None:
    """A convolution's kind from its input's and weight's shapes ((N, C, ...) and (O, C/groups, kh, kw))."""
    if len(shapes) >= 2 and len(shapes[0]) >= 2 and len(shapes[1]) == 4 and shapes[1][1]:
        return conv_kind(shapes[0][1], shapes[0][1] // shapes[1][1], tuple(shapes[1][2:]))
    return None


def module_kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Conv2d):
        return conv_kind(module.in_channels, module.groups, tuple(module.kernel_size))
    if isinstance(module, nn.Linear):
        return LINEAR
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return BATCHNORM
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AvgPool2d | nn.MaxPool2d):
        return POOL
    act = _activation(type(module).__name__)
    return f"activation ({act})" if act else None


class Classifier:
    """Kinds of the ops of one model: module paths resolved once, ancestors' contexts included."""

    def __init__(self, model: nn.Module) -> None:
        self.modules = dict(model.named_modules())

    def context(self, path: str) -> str | None:
        """squeeze-excite or attention when `path` or a module above it is one."""
        parts = path.split(".") if path else []
        for depth in range(len(parts), 0, -1):
            module = self.modules.get(".".join(parts[:depth]))
            name = type(module).__name__ if module is not None else ""
            for pattern, kind in _CONTEXTS:
                if pattern.search(name):
                    return kind
        return None

    def owner(self, layer: str, op: str, shapes: tuple[tuple[int, ...], ...] = ()) -> str:
        """The module a convolution belongs to: its layer, or where the exporter folded a batch norm into it
        (the node is named after the norm), the norm's sibling `Conv2d` with the same weight shape."""
        module = self.modules.get(layer) if layer else None
        if module is None or isinstance(module, nn.Conv2d) or op_kind(op) != CONV or len(shapes) < 2:
            return layer
        parent = layer.rpartition(".")[0]
        return next((path for path, m in self.modules.items() if isinstance(m, nn.Conv2d) and
                     path.rpartition(".")[0] == parent and tuple(m.weight.shape) == tuple(shapes[1])), layer)

    def kind(self, layer: str, op: str, shapes: tuple[tuple[int, ...], ...] = ()) -> str:
        named = op_kind(op)
        context = self.context(layer) if layer else None
        if context:
            return context
        module = self.modules.get(layer) if layer else None
        by_module = module_kind(module) if module is not None else None
        if named == CONV:  # a batch norm a runtime runs as a 1x1 convolution stays a batch norm
            return by_module if isinstance(module, nn.Conv2d) else shapes_kind(shapes) or by_module or CONV
        if named is None and by_module:
            return by_module
        return named or by_module or OTHER


def flops_by_module(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Each module's own FLOPs (its total less its children's) on `example`, by module path ("" = root)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(example)
    totals = {}
    for key, ops in counter.get_flop_counts().items():
        if key == "Global":
            continue
        path = key.partition(".")[2]  # the counter prefixes the root's class name
        totals[path] = sum(ops.values())
    own = dict(totals)
    for path, flops in totals.items():
        if path:
            parent = path.rpartition(".")[0]
            while parent not in totals and parent:
                parent = parent.rpartition(".")[0]
            own[parent] = own.get(parent, 0) - flops
    return {path: flops for path, flops in own.items() if flops > 0}


def flops_by_kind(classifier: Classifier, flops: dict[str, int]) -> dict[str, int]:
    """The model's FLOPs per kind (a module's own FLOPs are its convolutions', linear layers' or matmuls')."""
    kinds: collections.Counter[str] = collections.Counter()
    for path, value in flops.items():
        module = classifier.modules.get(path)
        kind = classifier.context(path) or (module_kind(module) if module is not None else None) or OTHER
        kinds[kind] += value
    return dict(kinds)
