"""int8 ONNX: ONNX Runtime's static quantization to QDQ, cached, and what the quantized graph holds.

One QDQ file serves every runtime that reads explicit quantization from ONNX: ONNX Runtime's CPU
provider (which fuses QDQ pairs into QLinear/integer kernels), its CUDA and TensorRT providers, and
TensorRT itself. The fp32 export first goes through the runtime's pre-processing step
(`quant_pre_process`: shape inference and graph optimization, as ONNX Runtime's documentation asks),
then `quantize_static` with the job's settings. The file is keyed by the fp32 export, the calibration
set (by content), every setting and ONNX Runtime's version; the record names each.
"""

from __future__ import annotations

import collections
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.artifact_cache import cached, recorded_sha256, remembered
from backends.calibration import Calibration
from backends.config import BackendConfig, choices, option
from backends.cpu_isa import reduce_range
from backends.onnx_export import INPUT_NAME

COMPUTE_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}  # the ops int8 is meant to speed up
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclass(frozen=True)
class QdqSettings(BackendConfig):
    """`quantize_static`'s settings a job can choose: the ONNX backends' configurations extend it."""

    calibration_method: str = choices("minmax", "entropy", "percentile", help="how activation ranges are calibrated")
    per_channel: bool = option(True, "per-channel weight scales (False: per-tensor)")
    activation_type: str = choices("quint8", "qint8", help="activation integer type (U8S8 is ORT's x86 default)")
    weight_type: str = choices("qint8", "quint8", help="weight integer type")
    symmetric_activations: bool = option(False, "symmetric activation ranges (zero point 0), as TensorRT requires")
    reduce_range: str = choices("auto", "on", "off", help="7-bit weight ranges; auto: on where the CPU has no VNNI/AMX "
                                "(its int8 kernels saturate 16-bit sums otherwise)")


@dataclass(frozen=True)
class TensorRTQdq(QdqSettings):
    """QDQ as TensorRT's explicit quantization reads it: signed, symmetric activations and weights."""

    activation_type: str = choices("qint8", "quint8", help="activation integer type (TensorRT: signed)")
    symmetric_activations: bool = option(True, "symmetric activation ranges (zero point 0), as TensorRT requires")
    reduce_range: str = choices("off", "on", "auto", help="7-bit weight ranges (a GPU's int8 does not saturate: off)")


def float_nodes(fp32: Path, layers: list[str]) -> list[str]:
    """The ONNX compute nodes (Conv, Gemm, MatMul) the exporter made from the modules named `layers`: what
    `nodes_to_exclude` keeps in float for a recipe's `float_layers`."""
    from backends.onnx_layers import layer_table

    nodes = {name: (module, op) for name, (module, op, _, _) in layer_table(fp32)["nodes"].items() if op in COMPUTE_OPS}
    found, missing = [], []
    for layer in layers:
        mine = [name for name, (module, _) in nodes.items() if module == layer]
        if not mine:  # a convolution the exporter folded a batch norm into carries the norm's name: its sibling's
            parent = layer.rpartition(".")[0]
            mine = [name for name, (module, _) in nodes.items() if module.rpartition(".")[0] == parent]
            mine = mine if len(mine) == 1 else []
        found += mine
        missing += [] if mine else [layer]
    if missing:
        raise ValueError(f"no compute node of the exported graph comes from {', '.join(missing)}")
    return sorted(set(found))


def quantize_qdq(fp32: Path, settings: Any, calibration: Calibration, batch: int, cache_dir: Path,
                 float_layers: list[str] | None = None) -> tuple[Path, float, dict[str, Any]]:
    """The cached QDQ int8 file for `fp32`, the seconds spent quantizing (0 on a hit), and what the
    record says about it (tool, settings, calibration, graph counts); `float_layers` (module names) stay
    float through `nodes_to_exclude`."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    chosen = {name: getattr(settings, name) for name in QdqSettings.__dataclass_fields__}
    chosen["reduce_range"] = reduce_range(settings.reduce_range)  # resolved: the file depends on the value
    excluded = float_nodes(fp32, float_layers) if float_layers else []
    if excluded:
        chosen["nodes_to_exclude"] = excluded
    key = hashlib.sha256(f"{recorded_sha256(fp32)}|{calibration.digest}|{sorted(chosen.items())}|{ort.__version__}"
                         .encode()).hexdigest()[:16]
    path = cache_dir / "int8" / f"{fp32.stem}-qdq-{key}.onnx"
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    types = {"quint8": QuantType.QUInt8, "qint8": QuantType.QInt8}

    class Reader:  # onnxruntime.quantization.CalibrationDataReader's protocol
        def __init__(self) -> None:
            self.inputs = iter(calibration.batches(batch))

        def get_next(self) -> dict | None:
            x = next(self.inputs, None)
            return None if x is None else {INPUT_NAME: x}

    def build(tmp: Path) -> None:
        pre = tmp.with_name(tmp.stem + ".pre.onnx")
        try:
            quant_pre_process(str(fp32), str(pre))
            quantize_static(str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=settings.per_channel, reduce_range=chosen["reduce_range"],
                            activation_type=types[settings.activation_type],
                            weight_type=types[settings.weight_type],
                            calibrate_method=methods[settings.calibration_method], nodes_to_exclude=excluded,
                            extra_options={"ActivationSymmetric": settings.symmetric_activations})
        finally:
            pre.unlink(missing_ok=True)

    start = time.perf_counter()
    built = cached(path, build)
    seconds = time.perf_counter() - start if built else 0.0
    info = {"tool": f"onnxruntime.quantization {ort.__version__}", "format": "QDQ", **chosen,
            "calibration": calibration.describe(), "graph": remembered(path, "qdq", lambda: qdq_graph(path))}
    return path, seconds, info


def qdq_graph(path: Path) -> dict[str, Any]:
    """How much of a QDQ graph runs quantized: a compute op (Conv, Gemm, MatMul) whose inputs all come
    from DequantizeLinear is quantized; one with a float input stayed float (the op types are listed)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    initial = {init.name for init in graph.initializer}
    quantized, float_ops = 0, collections.Counter()
    for node in graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        data = [name for name in node.input[:2] if name]  # data and weight; a bias may stay int32/float
        if all(producer.get(name) == "DequantizeLinear" for name in data):
            quantized += 1
        else:
            float_ops[node.op_type] += 1
    pairs = sum(node.op_type == "QuantizeLinear" for node in graph.node)
    dq_weights = sum(node.op_type == "DequantizeLinear" and node.input[0] in initial for node in graph.node)
    return {"quantized_ops": quantized, "float_ops": sum(float_ops.values()), "float_op_types": dict(float_ops),
            "qdq_pairs": pairs, "quantized_weights": dq_weights}


def ort_kernels(path: Path, level: Any) -> dict[str, Any]:
    """What ONNX Runtime's CPU provider made of a QDQ file: its optimized graph (saved once beside the
    file) has integer kernels (QLinearConv, ConvInteger, MatMulIntegerToFloat, ...) where it fused a QDQ
    group, and float Conv/FusedConv/Gemm/MatMul where it kept dequantized float."""
    import onnx
    import onnxruntime as ort

    optimized = path.with_name(f"{path.stem}.ort-{ort.__version__}-{int(level)}.onnx")

    def build(tmp: Path) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = str(tmp)
        options.log_severity_level = 3  # its warning that the file suits this machine only is the point here
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    cached(optimized, build)

    def count() -> dict[str, Any]:
        integer, floating = collections.Counter(), collections.Counter()
        for node in onnx.load(str(optimized), load_external_data=False).graph.node:
            if node.op_type.startswith(("QLinear", "QGemm", "QAttention")) or "Integer" in node.op_type:
                integer[node.op_type] += 1
            elif node.op_type in COMPUTE_OPS | {"FusedConv", "FusedGemm", "FusedMatMul"}:
                floating[node.op_type] += 1
        return {"integer_kernels": dict(integer), "float_kernels": dict(floating)}

    return remembered(optimized, "kernels", count)
