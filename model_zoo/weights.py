"""Checkpoint loading: safe deserialization, unwrapping, renaming, and readable mismatch errors.

Accepts a plain state dict or one wrapped under `state_dict` / `model`, with or without the
`module.` prefix DataParallel adds, as a PyTorch file (`torch.load(weights_only=True)`, never a
plain unpickle) or a safetensors file. Foreign names (timm's) are renamed by the spec's key maps.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from model_zoo.errors import CheckpointError
from model_zoo.spec import KeyMap

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema")
SHOWN = 5  # names listed per kind of mismatch before "and N more"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat {name: tensor} dict, or raise a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file ({_first_line(exc)})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc), flags=re.IGNORECASE)
        if found is None:  # not a pickle the safe loader can parse at all
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or not a checkpoint)") from None
        raise CheckpointError(
            f"refusing to load {path}: it holds a pickled Python object ({found.group(1)}) beyond tensors and plain "
            "containers, which could run code; re-save its state dict with torch.save(model.state_dict(), ...) or as safetensors"
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or not a checkpoint: {_first_line(exc)})"
        ) from None
    return unwrap(obj, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def unwrap(obj: object, source: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """Find the state dict inside a training checkpoint and strip a `module.` prefix."""
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                return unwrap(obj[key], source)
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source} holds no state dict (expected a mapping of names to tensors)")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def is_fused_state(state: Mapping[str, torch.Tensor], marker: str) -> bool:
    """Whether a checkpoint holds the fused (inference) form: a key with the spec's `fused_state_marker`."""
    return any(marker in k for k in state)


def rename(state: Mapping[str, torch.Tensor], key_maps: Sequence[KeyMap]) -> dict[str, torch.Tensor]:
    """Apply the first key map that recognizes these names; unknown names are left as they are."""
    for key_map in key_maps:
        renamed = key_map(state)
        if renamed is not None:
            return renamed
    return dict(state)


def describe_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """One readable message listing missing, unexpected and wrongly shaped keys, or None if all fit.

    BatchNorm's `num_batches_tracked` counters are optional: checkpoints often omit them and they do
    not affect inference.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (model: {tuple(expected[k].shape)})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    parts = [
        f"{label} {len(items)}: {', '.join(items[:SHOWN])}{f' and {len(items) - SHOWN} more' if len(items) > SHOWN else ''}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        if items
    ]
    return "; ".join(parts) or None


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path = "checkpoint") -> nn.Module:
    """Load strictly (modulo `num_batches_tracked`) or raise one CheckpointError naming the mismatch."""
    problem = describe_mismatch(model, state)
    if problem:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {problem}")
    model.load_state_dict(state, strict=False)
    return model


def state_sha256(model: torch.nn.Module) -> str:
    """Identifies a model's weights (names and values), whatever file or seed they came from: the key of
    artifact caches, and how an accuracy record is joined to the latency records of the same weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
