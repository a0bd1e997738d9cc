"""What the zoo knows about a model, kept apart from how the model is built.

A spec is data: a name, the reference figures a correct build must reproduce (with their source),
the preprocessing accuracy evaluation needs, and a builder. timm keeps pretrained configs apart from
architectures for the same reason: the numbers we compare against must not hide inside code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

Form = Literal["train", "fused"]
FORMS: tuple[Form, ...] = ("train", "fused")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Reference:
    """Published figures for one model and where they come from."""

    params: int | None = None  # parameters of the inference (fused) form
    params_train: int | None = None  # parameters of the training form, where it differs
    macs_m: float | None = None  # multiply-adds, millions, at the spec's input size (counted)
    macs_paper_m: float | None = None
    top1: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Preprocess:
    """Evaluation preprocessing (timm's data-config fields)."""

    input_size: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


# The runtime-neutral kinds of operation a deployed-graph rule may forbid; each backend maps its own op
# types (Core ML `batch_norm`, ONNX `BatchNormalization`, ...) to these.
OP_KINDS = ("add", "batchnorm")


@dataclass(frozen=True)
class DeployedGraph:
    """What a model's deployed (fused) graph must not contain, checked on every backend's converted graph.

    A reparameterizable model's claim is structural: once fused, no branch is summed (`add`) and no
    normalization is left (`batchnorm`); its training form must fail the same check."""

    forbids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.forbids) - set(OP_KINDS)
        if unknown:
            raise ValueError(f"unknown op kinds {sorted(unknown)}; known: {OP_KINDS}")


# Builds the model in the given form; `num_classes` lets tests and fine-tuned checkpoints differ.
Builder = Callable[[Form, int], nn.Module]
# Renames a foreign checkpoint's keys (timm's, say) to ours; returns None when the names are not its.
KeyMap = Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor] | None]


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the registry."""

    name: str
    family: str
    build: Builder = field(repr=False, compare=False)
    reference: Reference = Reference()
    preprocess: Preprocess = Preprocess()
    reparameterizable: bool = False  # has train-time branches that `reparameterize` folds away
    fused_graph: DeployedGraph | None = None  # what its deployed (fused) graph may not contain
    fused_state_marker: str | None = None  # a state-dict key fragment only the fused form has
    key_maps: tuple[KeyMap, ...] = field(default=(), repr=False, compare=False)
    in_mission: bool = False  # part of the default sweep
    num_classes: int = 1000  # outputs of the head (ImageNet-1k)
    description: str = ""

    @property
    def input_size(self) -> int:
        return self.preprocess.input_size
