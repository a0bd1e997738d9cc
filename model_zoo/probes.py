"""The GEMM probe: a network that is, to within 0.3% of its work, one large matrix product.

A job's efficiency is its GFLOP/s as a share of what the machine can do. torch's `mm` is one ceiling, but
not every runtime's: ONNX Runtime's and OpenVINO's convolutions ran up to 2x past torch's BLAS on an AMD EPYC
(#49). Timed through each runtime like any model, this network says what that runtime's own GEMM reaches: a
1x1 convolution of 1024 channels into 1024 over a 32x32 map is a 1024 x 1024 x 1024 matrix product
(1.07 GMAC), which every runtime lowers to its best GEMM kernel.
"""

from __future__ import annotations

import torch
from torch import nn

NAME = "gemm_probe"
CHANNELS = 1024
SIZE = 32  # the input's side: SIZE * SIZE = 1024 pixels, the GEMM's third dimension
SEED = 0


class GemmProbe(nn.Module):
    """3 -> 1024 channels (3 MACs a pixel and channel: a rounding error), then the 1024 x 1024 product,
    then a global mean so the output stays small (what a runtime copies out is not timed work)."""

    def __init__(self, num_classes: int = CHANNELS) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(SEED)
        self.widen = nn.Conv2d(3, CHANNELS, 1, bias=False)
        self.gemm = nn.Conv2d(CHANNELS, num_classes, 1, bias=False)
        with torch.no_grad():
            for conv in (self.widen, self.gemm):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * conv.weight.shape[1] ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gemm(self.widen(x)).mean((2, 3))


def macs(batch: int = 1) -> int:
    """The probe's multiply-adds, both convolutions: what its GFLOP/s is counted from."""
    return batch * SIZE * SIZE * CHANNELS * (3 + CHANNELS)
