"""MobileOne (Vasu et al., CVPR 2023), S0-S4, in its training and its fused (inference) form.

Variants are rows of `VARIANTS` (width multipliers, conv branches, SE blocks per stage), not code.
Module names follow the authors' release (`stage0`, `rbr_conv`, `rbr_scale`, `rbr_skip`,
`reparam_conv`, `se.reduce`, `linear`) so their checkpoints load without renaming; timm's names for
the same weights are mapped in `timm_to_authors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from model_zoo.reparam import fuse_conv_bn, identity_kernel, pad_kernel

STAGE_BLOCKS = (2, 8, 10, 1)
STAGE_CHANNELS = (64, 128, 256, 512)


@dataclass(frozen=True)
class MobileOneVariant:
    """One row of the paper's Table: width multipliers a1..a4, k branches, SE blocks per stage."""

    widths: tuple[float, float, float, float]
    branches: int
    se_blocks: tuple[int, int, int, int] = (0, 0, 0, 0)
    blocks: tuple[int, int, int, int] = STAGE_BLOCKS  # (depthwise, pointwise) pairs per stage; fewer in test nets


VARIANTS: dict[str, MobileOneVariant] = {
    "s0": MobileOneVariant((0.75, 1.0, 1.0, 2.0), branches=4),
    "s1": MobileOneVariant((1.5, 1.5, 2.0, 2.5), branches=1),
    "s2": MobileOneVariant((1.5, 2.0, 2.5, 4.0), branches=1),
    "s3": MobileOneVariant((2.0, 2.5, 3.0, 4.0), branches=1),
    "s4": MobileOneVariant((3.0, 3.5, 3.5, 4.0), branches=1, se_blocks=(0, 0, 5, 1)),
}


class ConvBN(nn.Sequential):
    """A bias-free conv followed by BatchNorm: one train-time branch."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int) -> None:
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class SqueezeExcite(nn.Module):
    """SE as in MobileOne-S4: reduce to int(C/16) channels, ReLU, expand, sigmoid gate."""

    def __init__(self, channels: int, ratio: float = 0.0625) -> None:
        super().__init__()
        hidden = int(channels * ratio)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(gate))))
        return x * gate


class MobileOneBlock(nn.Module):
    """ReLU(SE(sum of branches)); branches: k conv-BN, a 1x1 conv-BN scale, a BN skip.

    In the fused form the branches are one conv with bias (`reparam_conv`).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        branches: int = 1,
        use_se: bool = False,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.cin, self.cout, self.kernel, self.stride, self.groups = cin, cout, kernel, stride, groups
        if fused:
            self.reparam_conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=True)
        else:
            self.rbr_skip = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
            self.rbr_conv = nn.ModuleList(ConvBN(cin, cout, kernel, stride, groups) for _ in range(branches))
            self.rbr_scale = ConvBN(cin, cout, 1, stride, groups) if kernel > 1 else None
        self.se = SqueezeExcite(cout) if use_se else nn.Identity()
        self.activation = nn.ReLU()

    def is_reparameterizable(self) -> bool:
        return not hasattr(self, "reparam_conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "reparam_conv"):
            return self.activation(self.se(self.reparam_conv(x)))
        out = sum(branch(x) for branch in self.rbr_conv)
        if self.rbr_scale is not None:
            out = out + self.rbr_scale(x)
        if self.rbr_skip is not None:
            out = out + self.rbr_skip(x)
        return self.activation(self.se(out))

    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single kernel and bias (float64, on the weights' device, as the authors' code builds them:
        a model fused on a GPU never mixes in CPU tensors) equal to the sum of all branches."""
        device = self.rbr_conv[0].conv.weight.device
        kernel = torch.zeros(self.cout, self.cin // self.groups, self.kernel, self.kernel, dtype=torch.float64,
                             device=device)
        bias = torch.zeros(self.cout, dtype=torch.float64, device=device)
        for branch in self.rbr_conv:
            k, b = fuse_conv_bn(branch.conv.weight, branch.bn)
            kernel, bias = kernel + k, bias + b
        if self.rbr_scale is not None:
            k, b = fuse_conv_bn(self.rbr_scale.conv.weight, self.rbr_scale.bn)
            kernel, bias = kernel + pad_kernel(k, self.kernel), bias + b
        if self.rbr_skip is not None:
            k, b = fuse_conv_bn(identity_kernel(self.cin, self.groups, self.kernel, device), self.rbr_skip)
            kernel, bias = kernel + k, bias + b
        return kernel, bias

    def reparameterize(self) -> None:
        """Replace the branches by `reparam_conv`, in place."""
        if hasattr(self, "reparam_conv"):
            return
        kernel, bias = self.fused_kernel_bias()
        ref = self.rbr_conv[0].conv.weight
        conv = nn.Conv2d(self.cin, self.cout, self.kernel, self.stride, self.kernel // 2, groups=self.groups, bias=True)
        conv = conv.to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            conv.weight.copy_(kernel)
            conv.bias.copy_(bias)
        del self.rbr_conv, self.rbr_scale, self.rbr_skip
        self.reparam_conv = conv


class MobileOne(nn.Module):
    """Stem block, four stages of (3x3 depthwise block, 1x1 pointwise block) pairs, pool, linear."""

    def __init__(self, variant: MobileOneVariant, num_classes: int = 1000, fused: bool = False) -> None:
        super().__init__()
        a = variant.widths
        cin = min(64, int(64 * a[0]))
        self.stage0 = MobileOneBlock(3, cin, 3, stride=2, fused=fused)  # the stem always has k=1
        for i, (blocks, base, width, n_se) in enumerate(zip(variant.blocks, STAGE_CHANNELS, a, variant.se_blocks)):
            cout = int(base * width)
            layers: list[nn.Module] = []
            for b in range(blocks):
                stride = 2 if b == 0 else 1
                se = b >= blocks - n_se
                k = variant.branches
                layers.append(MobileOneBlock(cin, cin, 3, stride, groups=cin, branches=k, use_se=se, fused=fused))
                layers.append(MobileOneBlock(cin, cout, 1, 1, groups=1, branches=k, use_se=se, fused=fused))
                cin = cout
            self.add_module(f"stage{i + 1}", nn.Sequential(*layers))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage0(x)
        x = self.stage4(self.stage3(self.stage2(self.stage1(x))))
        return self.linear(torch.flatten(self.gap(x), 1))


def build(variant: str, form: str, num_classes: int = 1000) -> MobileOne:
    return MobileOne(VARIANTS[variant], num_classes=num_classes, fused=form == "fused")


# timm's names for the same modules (models.md); order matters: `stage0.` before `stage{N}.`.
_TIMM_TO_AUTHORS: tuple[tuple[str, str], ...] = (
    (r"^stem\.", "stage0."),
    (r"^stages\.(\d+)\.", lambda m: f"stage{int(m.group(1)) + 1}."),  # type: ignore[dict-item]
    (r"^head\.fc\.", "linear."),
    (r"\.conv_kxk\.", ".rbr_conv."),
    (r"\.conv_scale\.", ".rbr_scale."),
    (r"\.identity\.", ".rbr_skip."),
    (r"\.attn\.fc1\.", ".se.reduce."),
    (r"\.attn\.fc2\.", ".se.expand."),
)


def timm_to_authors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """Rename a timm `mobileone_sX` state dict to the authors' names; None if it is not timm's."""
    if not any(k.startswith(("stem.", "stages.")) for k in state):
        return None
    renamed = {}
    for key, value in state.items():
        for pattern, repl in _TIMM_TO_AUTHORS:
            key = re.sub(pattern, repl, key)
        renamed[key] = value
    return renamed
