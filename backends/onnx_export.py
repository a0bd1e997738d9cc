"""Export a model to ONNX once, cached by what determines the file's content.

The key covers the weights' hash, the opset, the exporter (torch.export-based, torch version), the
model, batch and input size, so a cache hit is the same file bit for bit. Export writes a temporary
file and renames it: an interrupted export never leaves a half-written model in the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
from pathlib import Path

import torch
from torch import nn

from backends.artifact_cache import cached

OPSET = 18
EXPORTER = f"torch.export-{torch.__version__}"
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_availability(runtime: str, install: str):
    """Available when the exporter's packages and `runtime` import (found without importing them)."""
    from backends.base import module_availability

    for module in ("onnx", "onnxscript"):
        missing = module_availability(module, install)
        if not missing.ok:
            return missing
    return module_availability(runtime, install)


def onnx_path(cache_dir: Path, model_name: str, weights_hash: str, batch: int, size: int) -> Path:
    key = hashlib.sha256(f"{weights_hash}|{OPSET}|{EXPORTER}|{model_name}|{batch}|{size}".encode()).hexdigest()[:16]
    safe = model_name.replace(":", "_").replace("/", "_")
    return cache_dir / "onnx" / f"{safe}-b{batch}-{size}-{key}.onnx"


def export_onnx(model: nn.Module, model_name: str, weights_hash: str, batch: int, size: int,
                cache_dir: Path) -> tuple[Path, float]:
    """Return the cached ONNX file for this model and the seconds spent exporting (0 on a hit)."""
    path = onnx_path(cache_dir, model_name, weights_hash, batch, size)
    example = torch.zeros(batch, 3, size, size)

    def build(tmp: Path) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints progress lines
            program = torch.onnx.export(
                model.float().eval(), (example,), dynamo=True, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False,
            )
        program.save(str(tmp))

    start = time.perf_counter()
    built = cached(path, build)
    return path, time.perf_counter() - start if built else 0.0
