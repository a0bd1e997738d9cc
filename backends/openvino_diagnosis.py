"""Which layers of NNCF's int8 OpenVINO model lose the signal: OpenVINO's own intermediate outputs.

NNCF keeps the float model's operation names when it inserts FakeQuantize, so the same operation can be
found in both models by name. Both get every compute and activation operation as an extra output
(`Model.add_outputs`), are compiled as the job compiles them (the int8 one with its float remainder's
precision; the fp32 one at f32), and run on the same calibration inputs. Per operation: the SQNR of the
int8 model's tensor against the fp32 model's, accumulated to that point (OpenVINO does not separate a
layer's own quantization step: the loss at a layer is the fall from the layer before, `drop_db`, added
by the caller). Names resolve to modules through the ONNX file both came from (`onnx_layers`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backends.onnx_layers import LayerNames

COMPUTE = ("Convolution", "GroupConvolution", "MatMul")
WATCHED = (*COMPUTE, "Relu", "Clamp", "Swish", "HSwish", "Sigmoid", "Multiply", "Add", "ReduceMean")


def sqnr_db(ref: np.ndarray, actual: np.ndarray) -> float | None:
    noise = float(np.sum((ref.astype(np.float64) - actual) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    if noise == 0.0 or signal == 0.0:
        return None  # identical (infinite SQNR) or no signal at all: no number
    return round(10 * math.log10(signal / noise), 2)


def layer_errors(core: Any, fp32: Any, int8: Any, config: dict[str, Any], names: LayerNames,
                 inputs: list[np.ndarray]) -> list[dict[str, Any]]:
    """Per watched operation present in both models: module, op type, depth (order in the fp32 model) and
    the SQNR of its int8 output against fp32's over `inputs`."""
    fp32, int8 = fp32.clone(), int8.clone()
    quantized = {op.get_friendly_name(): op for op in int8.get_ordered_ops()}
    ordered = [op for op in fp32.get_ordered_ops() if op.get_type_name() in WATCHED
               and op.get_friendly_name() in quantized and op.get_output_size() == 1]
    fp32.add_outputs([op.output(0) for op in ordered])
    int8.add_outputs([quantized[op.get_friendly_name()].output(0) for op in ordered])
    first = len(fp32.outputs) - len(ordered)
    run_fp32 = core.compile_model(fp32, "CPU", {**config, "INFERENCE_PRECISION_HINT": "f32"})
    run_int8 = core.compile_model(int8, "CPU", config)
    refs: list[list[np.ndarray]] = [[] for _ in ordered]
    acts: list[list[np.ndarray]] = [[] for _ in ordered]
    for x in inputs:
        ref, act = run_fp32(x).to_tuple()[first:], run_int8(x).to_tuple()[first:]
        for i, (r, a) in enumerate(zip(ref, act)):
            refs[i].append(np.asarray(r, dtype=np.float32))
            acts[i].append(np.asarray(a, dtype=np.float32))
    rows = []
    depth = {op.get_friendly_name(): i for i, op in enumerate(fp32.get_ordered_ops())}
    for i, op in enumerate(ordered):
        name, kind = op.get_friendly_name(), op.get_type_name()
        rows.append({"tensor": name, "layer": names.layer(name, kind) or name, "op": kind, "depth": depth[name],
                     "compute_layer": names.layer(name, kind if kind in COMPUTE else "Convolution") or None,
                     "sqnr_db": sqnr_db(np.concatenate(refs[i]), np.concatenate(acts[i])), "qdq_sqnr_db": None})
    return rows
