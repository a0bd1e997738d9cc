"""The model zoo: specs, builders, reparameterization, checkpoint loading and counting.

Knows nothing of backends or timing. `create(name, form=..., weights=...)` is the one entry point.
"""

from model_zoo.counting import count_macs, count_params
from model_zoo.errors import CheckpointError, UnknownModelError, ZooError
from model_zoo.registry import create, get_spec, list_specs, macs_convention, mission_models
from model_zoo.reparam import is_fused, reparameterize
from model_zoo.spec import FORMS, ModelSpec, Preprocess, Reference

__all__ = [
    "FORMS", "CheckpointError", "ModelSpec", "Preprocess", "Reference", "UnknownModelError", "ZooError",
    "count_macs", "count_params", "create", "get_spec", "is_fused", "list_specs", "macs_convention",
    "mission_models", "reparameterize",
]
