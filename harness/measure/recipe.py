"""The network an int8 job's quantizer sees: the job's `int8` recipe applied to the model it opens.

One place for the sweep's processes, lockstep sides, profiles and `bench accuracy`, so the artifact a
latency record times and the one an accuracy record scores are built from the same weights. The
recipe's float layers are the runtimes' to honour (each quantizer has its own way); what changes the
weights (equalization) happens here, and the artifact is then keyed by the changed weights' hash.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from backends.base import JobSpec


def apply(model: nn.Module, job: JobSpec) -> tuple[nn.Module, dict[str, Any]]:
    """(the model to open, what was done: the record's `backend_info.int8_recipe`, empty when nothing)."""
    if job.precision != "int8":
        return model, {}
    recipe = job.recipe()
    if not recipe.active:
        return model, {}
    done: dict[str, Any] = {"recipe": recipe.as_dict()}
    if recipe.equalize:
        from model_zoo.equalize import channel_spread, equalize, folded

        model = folded(model)
        before = max(channel_spread(model).values(), default=1.0)
        model, pairs = equalize(model)
        done["equalized"] = {"pairs": len(pairs), "max_channel_spread_before": before,
                             "max_channel_spread_after": max(channel_spread(model).values(), default=1.0)}
    return model, done
