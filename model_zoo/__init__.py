"""The model zoo: specs, builders, reparameterization, checkpoint loading and counting.

Knows nothing of backends or timing. `create(name, form=..., weights=...)` is the one entry point.
Names are imported on first use (PEP 562), so `import model_zoo.errors` or `bench --help` does not pay for
torch and timm.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "count_macs": "counting", "count_params": "counting",
    "CheckpointError": "errors", "UnknownModelError": "errors", "ZooError": "errors",
    "create": "registry", "get_spec": "registry", "is_registered": "registry", "list_specs": "registry", "macs_convention": "registry",
    "mission_models": "registry",
    "is_fused": "reparam", "reparameterize": "reparam",
    "FORMS": "spec", "ModelSpec": "spec", "Preprocess": "spec", "Reference": "spec",
}
__all__ = [
    "FORMS", "CheckpointError", "ModelSpec", "Preprocess", "Reference", "UnknownModelError", "ZooError",
    "count_macs", "count_params", "create", "get_spec", "is_fused", "is_registered", "list_specs", "macs_convention",
    "mission_models", "reparameterize",
]

if TYPE_CHECKING:
    from model_zoo.counting import count_macs, count_params
    from model_zoo.errors import CheckpointError, UnknownModelError, ZooError
    from model_zoo.registry import create, get_spec, is_registered, list_specs, macs_convention, mission_models
    from model_zoo.reparam import is_fused, reparameterize
    from model_zoo.spec import FORMS, ModelSpec, Preprocess, Reference


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'model_zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"model_zoo.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
