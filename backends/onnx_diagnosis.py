"""Which layers of a QDQ int8 graph lose the signal: ONNX Runtime's own `qdq_loss_debug`, named by module.

Both graphs (the fp32 export and its QDQ quantization) are augmented to output every intermediate tensor
(`modify_model_output_intermediate_tensors`), run on the same calibration inputs (`collect_activations`),
and matched (`create_activation_matching`): per activation, the SQNR of the int8 graph's tensor against the
fp32 graph's (`xmodel`, the error accumulated up to that layer) and of its own quantize/dequantize step
(`qdq`, the error that layer's quantization adds). Weights likewise (`create_weight_matching`). Each tensor
is named by the module whose node produced it (the exporter's scope metadata, `onnx_layers`), so the
worst layers read as `bench profile` names them.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from backends.onnx_export import INPUT_NAME
from backends.onnx_layers import layer_table
from backends.onnx_quantize import COMPUTE_OPS


def _db(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None  # identical tensors: infinite SQNR, no number


def _compute_of(node: str, nodes: dict) -> str | None:
    """The convolution or linear layer whose output this node's tensor is (through activations and other
    single-input ops between them): where a weight's range would show."""
    seen = 0
    while node in nodes and seen < 8:
        module, op, producers, _ = nodes[node]
        if op in COMPUTE_OPS:
            return module or node
        if len(producers) != 1:
            return None
        node, seen = producers[0], seen + 1
    return None


def layer_errors(fp32: Path, qdq: Path, inputs: list[np.ndarray]) -> list[dict[str, Any]]:
    """Per activation the int8 graph computes: its module, op, SQNR against fp32 (dB) accumulated to it and
    added by its own quantization; in graph order (depth)."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    feeds = [{INPUT_NAME: x} for x in inputs]  # what `collect_activations` iterates over
    with tempfile.TemporaryDirectory(prefix="onebench-qdq-debug-") as tmp:
        float_aug, qdq_aug = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        modify_model_output_intermediate_tensors(str(fp32), str(float_aug))
        modify_model_output_intermediate_tensors(str(qdq), str(qdq_aug))
        float_acts = collect_activations(str(float_aug), feeds)
        qdq_acts = collect_activations(str(qdq_aug), feeds)
    errors = compute_activation_error(create_activation_matching(qdq_acts, float_acts))
    table = layer_table(fp32)
    producer, nodes = table["outputs"], table["nodes"]
    order = {name: i for i, name in enumerate(nodes)}
    rows = []
    for tensor, err in errors.items():
        node = producer.get(tensor)
        if node is None or "xmodel_err" not in err:
            continue
        module, op = nodes[node][0], nodes[node][1]
        rows.append({"tensor": tensor, "layer": module or node, "op": op, "depth": order[node],
                     "compute_layer": _compute_of(node, nodes),
                     "sqnr_db": _db(err["xmodel_err"]), "qdq_sqnr_db": _db(err["qdq_err"])})
    return sorted(rows, key=lambda r: r["depth"])
