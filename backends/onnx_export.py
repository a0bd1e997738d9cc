"""Export a model to ONNX once, cached by what determines the file's content.

The key covers the weights' hash, the opset, the exporter (torch.export-based, torch version), the
model, batch and input size, so a cache hit is the same file bit for bit. Export writes a temporary
file and renames it: an interrupted export never leaves a half-written model in the cache.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backends.artifact_cache import cached, remembered
from backends.graph_rules import check_graph, deployed_rule, describe

OPSET = 18
EXPORTER = f"torch.export-{torch.__version__}"
INPUT_NAME, OUTPUT_NAME = "input", "logits"
# ONNX op types -> the zoo's neutral kinds. An Add with a constant operand is a bias ("Add(constant)", no
# kind): only an Add of two computed tensors merges branches.
OP_KINDS = {"Add": "add", "BatchNormalization": "batchnorm"}


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


def graph_ops(path: Path) -> dict[str, int]:
    """The exported graph's op types with their counts (nested graphs included), an Add with a constant
    operand counted apart; kept beside the file so each process does not parse it again."""
    return remembered(path, "ops", lambda: _count_ops(path))


def _count_ops(path: Path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: collections.Counter[str] = collections.Counter()

    def walk(graph: Any, constants: set[str]) -> None:
        constants = constants | {init.name for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                constants |= set(node.output)
            bias = node.op_type == "Add" and any(name in constants for name in node.input)
            counts["Add(constant)" if bias else node.op_type] += 1
            for attr in node.attribute:
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    walk(sub, constants)

    walk(model.graph, set())
    for function in model.functions:
        walk(onnx.helper.make_graph(function.node, function.name, [], []), set())
    return dict(sorted(counts.items()))


def checked_graph(path: Path, model_name: str, form: str) -> dict[str, Any]:
    """The deployed-graph check of an exported model (the spec's rule); a fused model that breaks it is an
    error here, before anything is timed: its export did not give the graph the model promises."""
    check = check_graph(graph_ops(path), OP_KINDS, deployed_rule(model_name))
    if form == "fused" and check.get("passed") is False:
        raise RuntimeError(f"the exported fused {model_name} breaks its deployed-graph rule: {describe(check)}")
    return check
