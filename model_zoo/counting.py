"""Parameter and multiply-add counts.

MACs are `torch.utils.flop_counter.FlopCounterMode` FLOPs / 2: convolutions, linear layers and
matmuls only. Some papers' figures (Mobile-Former's, and fvcore's counts generally) also charge
normalization and pooling layers per element; `convention="fvcore"` adds exactly fvcore's
per-element costs (eval BatchNorm 2 with affine, LayerNorm 5 with affine, average pooling 1) so those
figures can be reproduced rather than explained away.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Convention = Literal["matmul", "fvcore"]
aten = torch.ops.aten


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _numel(shape) -> int:
    return math.prod(shape)


# Each returns FLOPs (= 2 x the op-count fvcore reports), since FlopCounterMode halves to MACs later.
def _batch_norm(input_shape, weight_shape=None, *args, out_shape=None, **kwargs) -> int:
    return 2 * _numel(input_shape) * (2 if weight_shape is not None else 1)


def _layer_norm(input_shape, normalized_shape, weight_shape=None, *args, out_shape=None, **kwargs) -> int:
    return 2 * _numel(input_shape) * (5 if weight_shape is not None else 4)


def _mean(input_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * _numel(input_shape)


_FVCORE_EXTRA = {
    aten.native_batch_norm: _batch_norm,
    aten._native_batch_norm_legit_no_training: _batch_norm,
    aten.native_layer_norm: _layer_norm,
    aten.mean: _mean,
    aten._adaptive_avg_pool2d: _mean,
}


def count_macs(
    model: nn.Module, input_size: int = 224, batch: int = 1, convention: Convention = "matmul"
) -> int:
    """Multiply-adds of one forward pass on a `batch` x 3 x input_size x input_size input."""
    mapping = _FVCORE_EXTRA if convention == "fvcore" else None
    param = next(model.parameters())
    x = torch.zeros(batch, 3, input_size, input_size, dtype=param.dtype, device=param.device)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
