"""NNCF's accuracy-aware int8 for OpenVINO (`nncf.quantize_with_accuracy_control`): the layers it keeps float.

`bench int8 --budget PT` on OpenVINO lets NNCF do the search it was built for: quantize, measure the drop
on labelled images, rank the quantized groups by their contribution to it and revert them to float one at
a time until the drop is within `max_drop`. onebench keeps NNCF's answer, not its model: the compute ops
whose weights NNCF left unquantized, beyond those plain `nncf.quantize` leaves, named by module (the ONNX
node each op came from), become the job's `int8.float_layers`. The artifact that is timed and scored is
then an ordinary int8 job (NNCF's ignored scope over those layers), keyed and reproducible by its options.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from backends.calibration import Calibration
from backends.onnx_layers import LayerNames, layer_table
from backends.openvino_cpu import COMPUTE_LAYERS, OpenVinoConfig, converted_ir

# Ops a weight passes through between its constant and the compute op (decompression, grouping).
WEIGHT_PATH = {"Convert", "Reshape", "Transpose", "Multiply", "Subtract", "Unsqueeze"}


def _weights_quantized(op) -> bool:
    """Whether a compute op's weights are int8: a FakeQuantize on them, or (as NNCF saves them) an integer
    constant decompressed on the way (Convert, Subtract, Multiply); a float constant is a float layer."""
    node = op.input_value(1).get_node()
    for _ in range(6):
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            return node.get_output_element_type(0).is_integral()
        if kind not in WEIGHT_PATH:
            return False
        node = node.input_value(0).get_node()
    return False


def float_compute_ops(model) -> set[tuple[str, str]]:
    """(name, type) of the compute ops of a quantized OpenVINO model whose weights stay float."""
    return {(op.get_friendly_name(), op.get_type_name()) for op in model.get_ops()
            if op.get_type_name() in COMPUTE_LAYERS and op.get_input_size() > 1 and not _weights_quantized(op)}


def validate(compiled, items: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[float, list[float]]:
    """NNCF's validation function: top-1 over the items, and each item's own (for its ranking of layers)."""
    hits = [float(np.mean(np.argmax(np.asarray(compiled(x)[0]), axis=-1) == y)) for x, y in items]
    return float(np.mean(hits)), hits


def reverted_layers(onnx: Path, shape: list[int], options: OpenVinoConfig, calibration: Calibration,
                    validation: list[tuple[np.ndarray, np.ndarray]], max_drop_pt: float) -> tuple[list[str], dict]:
    """The modules NNCF's accuracy control keeps float so that top-1 on `validation` drops at most `max_drop_pt`
    points, and what it measured (its drop, the ops it reverted)."""
    import nncf
    import openvino as ov

    core = ov.Core()
    inputs = list(calibration.batches(shape[0]))
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    settings = {"preset": presets[options.preset], "subset_size": len(inputs),
                "fast_bias_correction": options.fast_bias_correction}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # progress bars
        plain = nncf.quantize(converted_ir(ov, core, onnx, shape), nncf.Dataset(inputs), **settings)
        controlled = nncf.quantize_with_accuracy_control(
            converted_ir(ov, core, onnx, shape), nncf.Dataset(inputs), nncf.Dataset(validation), validate,
            max_drop=max_drop_pt / 100, drop_type=nncf.DropType.ABSOLUTE, **settings)
        reference = validate(core.compile_model(converted_ir(ov, core, onnx, shape), "CPU"), validation)[0]
        reached = validate(core.compile_model(controlled, "CPU"), validation)[0]
    names = LayerNames(layer_table(onnx))
    reverted = sorted(float_compute_ops(controlled) - float_compute_ops(plain))
    layers = sorted({names.layer(name, kind) for name, kind in reverted} - {""})
    return layers, {"method": f"nncf {nncf.__version__} quantize_with_accuracy_control (max_drop {max_drop_pt / 100:g}, "
                              "absolute top-1, on the labelled calibration images)",
                    "reverted_ops": [name for name, _ in reverted], "nncf_drop_pt": 100 * (reference - reached)}
