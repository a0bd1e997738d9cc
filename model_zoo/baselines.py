"""Baselines and any timm model, built by timm so users' timm weights and data configs apply.

`pretrained=False` always: creating a model never touches the network; weights come from a local
file through `model_zoo.weights`.
"""

from __future__ import annotations

from torch import nn

from model_zoo.errors import UnknownModelError
from model_zoo.spec import Preprocess


def timm_available_names() -> list[str]:
    import timm

    return timm.list_models()


def build_timm(name: str, num_classes: int = 1000) -> nn.Module:
    import timm

    if name not in timm.list_models():
        raise UnknownModelError(f"timm has no model named {name!r}; `timm.list_models('*pattern*')` lists them")
    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def timm_preprocess(name: str) -> Preprocess:
    """timm's data config for `name` (its default pretrained tag), without loading any weights."""
    import timm

    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        return Preprocess()
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    return Preprocess(
        input_size=int(cfg.get("input_size", (3, 224, 224))[-1]),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
        interpolation=str(cfg.get("interpolation", "bilinear")),
        mean=tuple(cfg.get("mean", Preprocess().mean)),
        std=tuple(cfg.get("std", Preprocess().std)),
    )
