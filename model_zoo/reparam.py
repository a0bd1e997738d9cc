"""Structural reparameterization: fold train-time linear branches into one convolution.

The math follows the MobileOne paper (and RepVGG before it): a conv followed by an inference-mode
BatchNorm is one conv with kernel W*gamma/sigma and bias beta - mu*gamma/sigma; a 1x1 kernel is a
kxk kernel that is zero but for its centre; a BatchNorm skip is a conv whose kernel is the identity.
Branches add, so their kernels and biases add. Everything is computed in float64 and cast back, so
the fused model is as exact as its dtype allows.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def fuse_conv_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of `bn(conv(x))` for a bias-free conv with `kernel` (float64)."""
    std = (bn.running_var.double() + bn.eps).sqrt()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    return kernel.double() * scale.reshape(-1, 1, 1, 1), beta - bn.running_mean.double() * scale


def pad_kernel(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Place a smaller (odd) kernel at the centre of a `size` x `size` one."""
    pad = (size - kernel.shape[-1]) // 2
    return nn.functional.pad(kernel, [pad, pad, pad, pad])


def identity_kernel(channels: int, groups: int, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The kxk grouped-conv kernel (float64, on `device`) that maps its input to itself."""
    per_group = channels // groups
    kernel = torch.zeros(channels, per_group, size, size, dtype=torch.float64, device=device)
    idx = torch.arange(channels, device=device)
    kernel[idx, idx % per_group, size // 2, size // 2] = 1.0
    return kernel


def reparameterize(model: nn.Module) -> nn.Module:
    """Return the inference form of `model`; the original is left untouched.

    Walks any module tree and fuses every submodule that offers `reparameterize()` (in place, on a
    deep copy), the way timm's `reparameterize_model` does, so new reparameterizable blocks need no
    change here. A model without such blocks comes back as an equal copy.
    """
    fused = copy.deepcopy(model)
    for module in list(fused.modules()):
        if hasattr(module, "reparameterize"):
            module.reparameterize()
    fused.eval()
    return fused


def is_fused(model: nn.Module) -> bool:
    """True when no submodule still has train-time branches to fold."""
    return not any(getattr(m, "is_reparameterizable", lambda: False)() for m in model.modules())
