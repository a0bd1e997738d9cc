"""Mobile-Former (Chen et al., CVPR 2022), all seven published variants.

A MobileNet path (local features) runs beside a Former path (a few learned global tokens). Each block
does Mobile->Former cross-attention (tokens attend to the feature map), a token self-attention block,
the mobile sub-block whose dynamic ReLUs take their coefficients from the first token, and
Former->Mobile cross-attention (pixels attend to the tokens). Variants are rows of `VARIANTS`.

Module names follow the authors' release (AAboys/MobileFormer) so their checkpoints load strictly;
index positions inside `nn.Sequential`s are kept by parameter-free placeholders where theirs has one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

TOKEN_HEADS = 4  # heads of the token self-attention (the release's default for that block)
CROSS_HEADS = 2  # heads of both cross-attentions
HYPER_REDUCTION = 4  # the dynamic-ReLU coefficient MLP squeezes the token by this factor
HEAD_EXPANSION = 6  # channels of the classifier's 1x1 conv, relative to the last block's


@dataclass(frozen=True)
class BlockCfg:
    """One block: `pw` = pw->dw->pw (`DnaBlock`), `dw` = dw->pw->dw->pw (`DnaBlock3`).

    `e2 == 0` means a plain inverted-residual conv block with no Former interaction.
    """

    kind: str
    e1: int
    channels: int
    stride: int
    e2: int


@dataclass(frozen=True)
class MobileFormerVariant:
    stem: int
    tokens: int
    token_dim: int
    num_features: int
    blocks: tuple[BlockCfg, ...]
    groups: int = 1


def _blocks(rows: list[tuple[str, int, int, int, int]]) -> tuple[BlockCfg, ...]:
    return tuple(BlockCfg(*row) for row in rows)


# Rows: (kind, e1, channels, stride, e2), from the paper's Table 9 / the authors' release.
_LARGE = [("dw", 2, 0, 1, 0), ("dw", 6, 1, 2, 4), ("pw", None, 1, 1, None), ("dw", 6, 2, 2, 4),
          ("pw", None, 2, 1, None), ("dw", 6, 3, 2, 4), ("pw", 4, 3, 1, 4), ("pw", 6, 4, 1, 4),
          ("pw", 6, 4, 1, 4), ("dw", 6, 5, 2, 4), ("pw", 6, 5, 1, 4), ("pw", 6, 5, 1, 4)]


def _large(widths: tuple[int, ...], e_small: tuple[int, int], e2_small: tuple[int, int]) -> tuple[BlockCfg, ...]:
    """The 12-block layout shared by the 151M..508M variants: widths per level, and the two
    stride-1 blocks at 56x56 and 28x28 whose expansions differ between variants."""
    rows, small = [], iter(zip(e_small, e2_small))
    for kind, e1, level, stride, e2 in _LARGE:
        if e1 is None:
            e1, e2 = next(small)
        rows.append((kind, e1, widths[level], stride, e2))
    return _blocks(rows)


_SMALL = _blocks([("dw", 3, 12, 2, 0), ("pw", 3, 12, 1, 3), ("dw", 6, 24, 2, 4), ("pw", 3, 24, 1, 3),
                  ("dw", 6, 48, 2, 4), ("pw", 4, 48, 1, 4), ("pw", 6, 64, 1, 4), ("dw", 6, 96, 2, 4),
                  ("pw", 6, 96, 1, 4)])

VARIANTS: dict[str, MobileFormerVariant] = {
    "508m": MobileFormerVariant(24, 6, 192, 1920, _large((24, 40, 72, 128, 176, 240), (3, 3), (3, 3))),
    "294m": MobileFormerVariant(16, 6, 192, 1920, _large((16, 24, 48, 96, 128, 192), (4, 4), (4, 4))),
    "214m": MobileFormerVariant(12, 6, 192, 1600, _large((12, 20, 40, 80, 112, 160), (3, 4), (4, 4))),
    "151m": MobileFormerVariant(12, 6, 192, 1280, _large((12, 16, 32, 64, 88, 128), (3, 3), (3, 3))),
    "96m": MobileFormerVariant(12, 4, 128, 1280, _blocks([
        ("dw", 2, 12, 1, 0), ("dw", 6, 16, 2, 4), ("dw", 6, 32, 2, 4), ("pw", 3, 32, 1, 3), ("dw", 6, 64, 2, 4),
        ("pw", 4, 64, 1, 4), ("pw", 6, 88, 1, 4), ("dw", 6, 128, 2, 4), ("pw", 6, 128, 1, 4)])),
    "52m": MobileFormerVariant(8, 3, 128, 1024, _SMALL),
    "26m": MobileFormerVariant(8, 3, 128, 1024, _SMALL, groups=4),
}


def _shuffle(groups: int, enabled: bool) -> nn.Module:
    return nn.ChannelShuffle(groups) if enabled else nn.Identity()


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


class HyperFunc(nn.Module):
    """Dynamic-ReLU coefficients (2 per channel) computed from the first global token."""

    def __init__(self, token_dim: int, channels: int) -> None:
        super().__init__()
        squeeze = token_dim // HYPER_REDUCTION
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, squeeze), nn.ReLU(), nn.Linear(squeeze, 2 * channels), nn.Hardsigmoid()
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hyper(tokens[0])[:, :, None, None]


def dynamic_relu(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """max(a1*x, a2*x) with slopes a1 in [0, 2] and a2 in [-1, 1] (Dynamic ReLU-B, two pieces)."""
    a1, a2 = coeffs.chunk(2, dim=1)
    return torch.maximum(x * ((a1 - 0.5) * 2.0 + 1.0), x * ((a2 - 0.5) * 2.0))


def _heads_split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(T, B, C) tokens -> (B, heads, T, C/heads)."""
    t, b, _ = x.shape
    return x.reshape(t, b, heads, -1).permute(1, 2, 0, 3)


def _heads_merge(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, T, C/heads) -> (T, B, C)."""
    b, _, t, _ = x.shape
    return x.permute(2, 0, 1, 3).reshape(t, b, -1)


class Mobile2Former(nn.Module):
    """Tokens (queries) attend to the feature map, whose pixels are keys and values unprojected."""

    def __init__(self, channels: int, token_dim: int) -> None:
        super().__init__()
        self.scale = (channels // CROSS_HEADS) ** -0.5
        self.alpha = nn.Sequential(nn.Linear(token_dim, channels), nn.Hardsigmoid())
        self.q = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, h, w = features.shape
        q = _heads_split(self.q(tokens), CROSS_HEADS)  # B x N x T x C/N
        k = features.reshape(b, CROSS_HEADS, c // CROSS_HEADS, h * w)  # B x N x C/N x HW
        attn = ((q @ k) * self.scale).softmax(dim=-1)
        mixed = _heads_merge(attn @ k.transpose(-1, -2)) * (self.alpha(tokens) * 2.0)
        return self.layer_norm(tokens + self.proj(mixed))


class FormerBlock(nn.Module):
    """Token self-attention (keys = values = the tokens) and a GELU feed-forward, post-norm."""

    def __init__(self, token_dim: int) -> None:
        super().__init__()
        self.scale = (token_dim // TOKEN_HEADS) ** -0.5
        self.ffn = nn.Sequential(nn.Linear(token_dim, 2 * token_dim), nn.GELU(), nn.Linear(2 * token_dim, token_dim))
        self.ffn_norm = nn.LayerNorm(token_dim)
        self.q = nn.Linear(token_dim, token_dim)
        self.channel_mlp = nn.Linear(token_dim, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = _heads_split(self.q(tokens), TOKEN_HEADS)  # B x N x T x D/N
        kv = _heads_split(tokens, TOKEN_HEADS)
        attn = ((q @ kv.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        tokens = self.layer_norm(tokens + self.channel_mlp(_heads_merge(attn @ kv)))
        return self.ffn_norm(tokens + self.ffn(tokens))


class Former2Mobile(nn.Module):
    """Pixels (queries, unprojected) attend to the tokens; the result is added to the features."""

    def __init__(self, channels: int, token_dim: int) -> None:
        super().__init__()
        self.scale = (channels // CROSS_HEADS) ** -0.5
        self.k = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(token_dim, channels)

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, h, w = features.shape
        q = features.reshape(b, CROSS_HEADS, c // CROSS_HEADS, h * w).transpose(-1, -2)  # B x N x HW x C/N
        k = _heads_split(self.k(tokens), CROSS_HEADS)  # B x N x T x C/N
        v = _heads_split(self.proj(tokens), CROSS_HEADS)
        attn = ((q @ k.transpose(-1, -2)) * self.scale).softmax(dim=-1)  # B x N x HW x T
        return features + (attn @ v).transpose(-1, -2).reshape(b, c, h, w)


class MobileFormerBlock(nn.Module):
    """Mobile->Former, Former, the mobile sub-block, Former->Mobile; or a plain conv block (e2 == 0)."""

    def __init__(self, cfg: BlockCfg, cin: int, token_dim: int, groups: int) -> None:
        super().__init__()
        cout, stride, g = cfg.channels, cfg.stride, groups
        self.kind = cfg.kind
        self.residual = stride == 1 and cin == cout
        self.conv_only = cfg.e2 == 0
        if self.conv_only:
            hidden = cin * cfg.e1
            self.conv = nn.Sequential(
                *_conv_bn(cin, hidden, 3, stride, groups=cin), nn.ReLU6(), _shuffle(cin, g > 1),
                *_conv_bn(hidden, cout, 1, groups=g),
            )
            return
        if cfg.kind == "dw":  # dw -> pw -> dw -> pw, inner residual around the second pair
            h1, h2 = round(cin * cfg.e1), round(cout * cfg.e2)
            self.conv1 = nn.Sequential(*_conv_bn(cin, h1, 3, stride, groups=cin), _shuffle(cin, g > 1))
            self.hyper1 = HyperFunc(token_dim, h1)
            self.conv2 = nn.Sequential(*_conv_bn(h1, cout, 1, groups=g))
            self.conv3 = nn.Sequential(*_conv_bn(cout, h2, 3, groups=cout), _shuffle(cout, g > 1))
            self.hyper3 = HyperFunc(token_dim, h2)
            self.conv4 = nn.Sequential(*_conv_bn(h2, cout, 1, groups=g))
        else:  # pw -> dw -> pw
            hidden = round(cin * cfg.e1)
            self.conv1 = nn.Sequential(*_conv_bn(cin, hidden, 1, groups=g), _shuffle(g, g > 1))
            self.hyper1 = HyperFunc(token_dim, hidden)
            self.conv2 = nn.Sequential(*_conv_bn(hidden, hidden, 3, stride, groups=hidden))
            self.hyper2 = HyperFunc(token_dim, hidden)
            self.conv3 = nn.Sequential(*_conv_bn(hidden, cout, 1, groups=g), _shuffle(g, g > 1))
        self.local_global = Mobile2Former(cin, token_dim)
        self.global_block = FormerBlock(token_dim)
        self.global_local = Former2Mobile(cout, token_dim)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.conv_only:
            out = self.conv(x)
            return (out + x if self.residual else out), tokens
        tokens = self.global_block(self.local_global(x, tokens))
        out = dynamic_relu(self.conv1(x), self.hyper1(tokens))
        if self.kind == "dw":
            out = self.conv2(out)
            out = out + self.conv4(dynamic_relu(self.conv3(out), self.hyper3(tokens)))
            out = self.global_local(out, tokens)
            return (out + x if self.residual else out), tokens
        out = self.conv3(dynamic_relu(self.conv2(out), self.hyper2(tokens)))
        if self.residual:
            out = out + x
        return self.global_local(out, tokens), tokens


class MergeClassifier(nn.Module):
    """1x1 conv + ReLU6 + pooled h-swish features, concatenated with the first token, then MLP head."""

    def __init__(self, cin: int, token_dim: int, num_features: int, num_classes: int, groups: int) -> None:
        super().__init__()
        hidden = cin * HEAD_EXPANSION
        self.conv = nn.Sequential(_shuffle(groups, groups > 1), *_conv_bn(cin, hidden, 1, groups=groups))
        self.act = nn.ReLU6()
        self.avgpool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Hardswish())
        self.fc = nn.Sequential(nn.Linear(hidden + token_dim, num_features), nn.BatchNorm1d(num_features), nn.Hardswish())
        self.classifier = nn.Sequential(nn.Dropout(0.0), nn.Linear(num_features, num_classes))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(self.avgpool(self.act(self.conv(x))), 1)
        return self.classifier(self.fc(torch.cat([pooled, tokens[0]], dim=1)))


class MobileFormer(nn.Module):
    def __init__(self, variant: MobileFormerVariant, num_classes: int = 1000) -> None:
        super().__init__()
        v = variant
        self.tokens = nn.Embedding(v.tokens, v.token_dim)
        self.stem = nn.Sequential(*_conv_bn(3, v.stem, 3, 2), nn.ReLU6())
        blocks, cin = [], v.stem
        for cfg in v.blocks:
            blocks.append(MobileFormerBlock(cfg, cin, v.token_dim, v.groups))
            cin = cfg.channels
        self.features = nn.Sequential(*blocks)
        self.local_global = Mobile2Former(cin, v.token_dim)
        self.classifier = MergeClassifier(cin, v.token_dim, v.num_features, num_classes, v.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens.weight[:, None, :].expand(-1, x.shape[0], -1)  # T x B x D
        x = self.stem(x)
        for block in self.features:
            x, tokens = block(x, tokens)
        return self.classifier(x, self.local_global(x, tokens))


def build(variant: str, form: str, num_classes: int = 1000) -> MobileFormer:
    """Mobile-Former has no train-time branches: both forms are the same network."""
    return MobileFormer(VARIANTS[variant], num_classes=num_classes)
