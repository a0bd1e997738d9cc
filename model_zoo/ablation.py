"""The networks of the MobileOne paper's bottleneck analyses (its Tables 2 and 3), as data.

The paper times "a 30-layer convolutional neural network" with different activations, and the same
network with and without skip connections and squeeze-excite, on an iPhone 12, without listing the
layers. Ours (all choices here, stated so results can be reproduced):

- input 224x224; 30 convolutions, each 3x3 with bias (BatchNorm folded, as deployed), each followed by
  the activation under test: a stride-2 stem (3 -> 16 channels, 112x112), then four stages of 7, 7, 7
  and 8 layers with widths 16, 32, 64, 128 at 56, 28, 14 and 7 pixels, the first layer of each with
  stride 2; then global average pooling and a linear classifier (1000 classes; not one of the 30).
  About 215M multiply-adds with ReLU, in the range of the mobile backbones it stands in for;
- `skip`: a residual add around every stride-1 layer whose input and output widths match;
- `se`: squeeze-excite after every conv (reduce to 1/4, ReLU, expand, sigmoid), before the activation.

Activations: ReLU, GELU, SiLU (Swish), Hard-Swish, SE-ReLU (squeeze-excite then ReLU), Dynamic
Shift-Max (Li et al., MicroNet, 2021) and DynamicReLU-A / -B (Chen et al., Dynamic ReLU, 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

STAGES = ((16, 1, 2), (16, 7, 2), (32, 7, 2), (64, 7, 2), (128, 8, 2))  # (width, layers, first layer's stride)
ACTIVATIONS = ("relu", "gelu", "silu", "hardswish", "se_relu", "dynamic_shift_max", "dyrelu_a", "dyrelu_b")
BLOCKS = ("plain", "skip", "se", "skip_se")
# The paper's two studies: their variants, and the baseline every other variant is compared with.
STUDIES = {"activations": (ACTIVATIONS, "relu"), "blocks": (BLOCKS, "plain")}
_PREFIX = {"activations": "ablation_act_", "blocks": "ablation_block_"}


def model_name(study: str, variant: str) -> str:
    """The registered zoo name of one variant (`ablation_act_gelu`, `ablation_block_skip_se`)."""
    return _PREFIX[study] + variant


def variant_of(study: str, model: str) -> str | None:
    """The variant a zoo name stands for in `study`, or None."""
    return model.removeprefix(_PREFIX[study]) if model.startswith(_PREFIX[study]) else None


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, ratio: float = 0.25) -> None:
        super().__init__()
        hidden = max(8, int(channels * ratio))
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(x.mean((2, 3), keepdim=True)))))


class _Hyper(nn.Module):
    """The coefficient network dynamic activations share: pool, FC, ReLU, FC."""

    def __init__(self, channels: int, outputs: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.mean((2, 3)))))


class DynamicReLU(nn.Module):
    """y = max_k (a_k x + b_k), coefficients from the input (Chen et al. 2020), K = 2 pieces.

    Variant A shares the coefficients across channels; B has them per channel. Residuals are
    2 sigmoid - 1, scaled by lambda_a = 1, lambda_b = 0.5, around a1 = 1, a2 = 0, b = 0 (the paper's init).
    """

    def __init__(self, channels: int, per_channel: bool, pieces: int = 2) -> None:
        super().__init__()
        self.channels, self.per_channel, self.pieces = channels, per_channel, pieces
        self.hyper = _Hyper(channels, 2 * pieces * (channels if per_channel else 1))
        self.register_buffer("init_a", torch.tensor([1.0] + [0.0] * (pieces - 1)))
        self.register_buffer("scale", torch.tensor([1.0] * pieces + [0.5] * pieces))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        theta = (2 * torch.sigmoid(self.hyper(x)) - 1).reshape(b, -1, 2 * self.pieces) * self.scale  # B x (C|1) x 2K
        a = (theta[..., : self.pieces] + self.init_a)[..., None, None]  # B x (C|1) x K x 1 x 1
        bias = theta[..., self.pieces:][..., None, None]
        return (x.unsqueeze(2) * a + bias).amax(dim=2)


class DynamicShiftMax(nn.Module):
    """y_i = max_k sum_j a_ij^k(x) x_{(i + j C/G) mod C} (Li et al., MicroNet 2021), J = 2, K = 2.

    Each output channel mixes itself with the channel one group away (a circular shift), with
    input-dependent weights, and takes the max of K such mixtures.
    """

    def __init__(self, channels: int, groups: int = 4, mixes: int = 2, pieces: int = 2) -> None:
        super().__init__()
        self.shift = channels // groups
        self.mixes, self.pieces = mixes, pieces
        self.hyper = _Hyper(channels, channels * mixes * pieces)
        init = torch.zeros(pieces, mixes)
        init[0, 0] = 1.0  # start as max(x, 0): a_i0^1 = 1, everything else 0
        self.register_buffer("init", init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        coeff = (2 * torch.sigmoid(self.hyper(x)) - 1).reshape(b, c, self.pieces, self.mixes) + self.init
        shifted = torch.stack([torch.roll(x, -j * self.shift, dims=1) for j in range(self.mixes)], dim=2)  # B C J H W
        mixed = torch.einsum("bckj,bcjhw->bckhw", coeff, shifted)
        return mixed.amax(dim=2)


def make_activation(name: str, channels: int) -> nn.Module:
    simple = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "hardswish": nn.Hardswish}
    if name in simple:
        return simple[name]()
    if name == "se_relu":
        return nn.Sequential(SqueezeExcite(channels), nn.ReLU())
    if name == "dynamic_shift_max":
        return DynamicShiftMax(channels)
    if name in ("dyrelu_a", "dyrelu_b"):
        return DynamicReLU(channels, per_channel=name == "dyrelu_b")
    raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")


@dataclass(frozen=True)
class AblationCfg:
    activation: str = "relu"
    skip: bool = False
    se: bool = False


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, cfg: AblationCfg) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=True)
        self.se = SqueezeExcite(cout) if cfg.se else nn.Identity()
        self.act = make_activation(cfg.activation, cout)
        self.residual = cfg.skip and stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.se(self.conv(x)))
        return out + x if self.residual else out


class AblationNet(nn.Module):
    def __init__(self, cfg: AblationCfg, num_classes: int = 1000) -> None:
        super().__init__()
        layers, cin = [], 3
        for width, count, stride in STAGES:
            for i in range(count):
                layers.append(ConvLayer(cin, width, stride if i == 0 else 1, cfg))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(x).mean((2, 3)))


def conv_layers(model: AblationNet) -> int:
    return sum(isinstance(m, ConvLayer) for m in model.modules())


def variant_cfg(kind: str, name: str) -> AblationCfg:
    if kind == "activations":
        return AblationCfg(activation=name)
    return AblationCfg(skip="skip" in name, se="se" in name)
