"""Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019) of a network's convolutions.

A fused MobileOne's kernels are sums of branches: per output channel their ranges differ by orders of
magnitude, and a per-tensor int8 scale (weights on some runtimes, activations on all) leaves the small
channels a few levels. For two convolutions in a row with only a positively homogeneous activation (ReLU)
or nothing between them, scaling output channel i of the first by 1/s_i and input channel i of the second
by s_i computes the same function; s_i = sqrt(r1_i r2_i) / r2_i makes both ranges sqrt(r1_i r2_i).

Own code on the torch model rather than a quantizer's: it runs before export, so one transform serves
ONNX Runtime, OpenVINO and PT2E alike (AIMET's `equalize_model` is not installable here; NNCF's channel
alignment works on OpenVINO models only). Batch norms are folded first (`torch.fx`'s `fuse`); a pair with
anything else between them (squeeze-excite, GELU, an add) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn

ITERATIONS = 20  # chains (dw -> pw -> dw ...) share convolutions: a few passes settle them (Nagel et al.)
PASS_THROUGH = (nn.ReLU, nn.Identity)  # f(s x) = s f(x) for s > 0


@dataclass(frozen=True)
class Pair:
    """Two convolutions equalized together, by module name."""

    first: str
    second: str


def _conv(modules: dict[str, nn.Module], node: fx.Node) -> nn.Conv2d | None:
    module = modules.get(node.target) if node.op == "call_module" else None
    return module if isinstance(module, nn.Conv2d) else None


def pairs(model: nn.Module) -> list[Pair]:
    """The equalizable convolution pairs of `model` (traced with torch.fx), in execution order."""
    graph = fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    found = []
    for node in graph.nodes:
        first = _conv(modules, node)
        if first is None:
            continue
        cur = node
        while len(cur.users) == 1:
            (cur,) = cur.users
            if cur.op == "call_module" and isinstance(modules.get(cur.target), PASS_THROUGH):
                continue
            if cur.op == "call_function" and cur.target in (torch.relu, nn.functional.relu):
                continue
            second = _conv(modules, cur)
            if second is not None and _compatible(first, second):
                found.append(Pair(node.target, cur.target))
            break
    return found


def _compatible(first: nn.Conv2d, second: nn.Conv2d) -> bool:
    channels = first.out_channels
    dense = second.groups == 1 and second.in_channels == channels
    depthwise = second.groups == second.in_channels == second.out_channels == channels
    return dense or depthwise


def _ranges(first: nn.Conv2d, second: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    r1 = first.weight.detach().abs().flatten(1).amax(1).double()
    w2 = second.weight.detach().abs().double()
    r2 = w2.flatten(1).amax(1) if second.groups > 1 else w2.transpose(0, 1).flatten(1).amax(1)
    return r1, r2


@torch.no_grad()
def _scale(first: nn.Conv2d, second: nn.Conv2d) -> float:
    """Equalize one pair in place; returns how far the scales were from 1 (max |log s|)."""
    r1, r2 = _ranges(first, second)
    ok = (r1 > 0) & (r2 > 0)
    s = torch.where(ok, torch.sqrt(r1 * r2) / r2.clamp_min(1e-300), torch.ones_like(r1))
    first.weight.div_(s.to(first.weight.dtype).view(-1, 1, 1, 1))
    if first.bias is not None:
        first.bias.div_(s.to(first.bias.dtype))
    shape = (-1, 1, 1, 1) if second.groups > 1 else (1, -1, 1, 1)
    second.weight.mul_(s.to(second.weight.dtype).view(shape))
    return float(s.log().abs().max())


def folded(model: nn.Module) -> nn.Module:
    """`model` in eval mode with its batch norms folded into their convolutions (`torch.fx`'s `fuse`, a
    traced copy), or `model` itself where it has none (a fused MobileOne)."""
    model = model.eval()
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        from torch.fx.experimental.optimization import fuse

        model = fuse(model)
    return model


def equalize(model: nn.Module, iterations: int = ITERATIONS) -> tuple[nn.Module, list[Pair]]:
    """The same function with its convolution pairs' per-channel ranges equalized (a copy where batch
    norms had to be folded, else `model` itself, changed in place); the pairs it equalized."""
    model = folded(model)
    found = pairs(model)
    modules = dict(model.named_modules())
    for _ in range(iterations):
        moved = max((_scale(modules[p.first], modules[p.second]) for p in found), default=0.0)
        if moved < 1e-6:
            break
    return model, found


def channel_spread(model: nn.Module) -> dict[str, float]:
    """Each convolution's per-output-channel weight range spread, max over channels of max |w| divided by
    their median: the suspected cause of a fused MobileOne's int8 loss (1 is perfectly even)."""
    spread = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            r = module.weight.detach().abs().flatten(1).amax(1).double()
            median = float(r.median())
            if median > 0:  # an all-zero half of a layer says nothing about its spread
                spread[name] = float(r.max()) / median
    return spread
