"""int8 for Inductor: PyTorch 2 export quantization (PT2E) with the x86 Inductor quantizer.

The fused model is exported (`torch.export`), annotated by `X86InductorQuantizer` (its default
config: per-channel symmetric int8 weights, affine uint8 activations), calibrated on the job's
calibration inputs, converted (`convert_pt2e`), and then packaged ahead of time like fp32, with
Inductor's `freezing` on: that is the pass that lowers quantize/dequantize patterns to oneDNN's int8
convolutions. PT2E lives in torchao since PyTorch 2.10 (`torch.ao.quantization.quantize_pt2e` left).
"""

from __future__ import annotations

import collections
from typing import Any

import torch
from torch import nn

from backends.calibration import Calibration

INSTALL = "pip install 'onebench[pt2e]'"
COMPUTE_TARGETS = ("conv", "linear", "addmm", "mm")
INDUCTOR_CONFIGS = {"freezing": True}  # lowers the quantized patterns to int8 kernels


def tool_version() -> str:
    from importlib.metadata import version

    return f"torchao {version('torchao')}"


def quantize_pt2e(model: nn.Module, example: torch.Tensor, calibration: Calibration, batch: int,
                  reduce_range: bool, float_layers: list[str] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The converted (int8 quantize/dequantize) module and what its graph holds; the modules named in
    `float_layers` get no quantization config (PT2E's per-module setting), so they stay float."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
    for name in float_layers or []:
        quantizer.set_module_name_qconfig(name, None)
    with torch.no_grad():
        exported = torch.export.export(model.float().eval(), (example,)).module()
        prepared = prepare_pt2e(exported, quantizer)
        for x in calibration.batches(batch):
            prepared(torch.from_numpy(x))
        converted = convert_pt2e(prepared)
    return converted, fx_graph(converted)


def fx_graph(module: Any) -> dict[str, Any]:
    """Compute ops (convolution, linear) whose data and weight come through a dequantize node are
    quantized (Inductor's freezing turns them into int8 kernels); the others stay float."""
    quantized, floating, pairs = 0, collections.Counter(), 0
    for node in module.graph.nodes:
        name = str(node.target)
        if node.op != "call_function":
            continue
        if "quantize_per" in name and "dequantize" not in name:
            pairs += 1
        short = name.split(".")[-2] if name.count(".") >= 2 else name
        if not any(short.startswith(t) for t in COMPUTE_TARGETS):
            continue
        inputs = [arg for arg in node.args[:2] if isinstance(arg, torch.fx.Node)]
        if inputs and all("dequantize" in str(arg.target) for arg in inputs):
            quantized += 1
        else:
            floating[short] += 1
    return {"quantized_ops": quantized, "float_ops": sum(floating.values()), "float_op_types": dict(floating),
            "qdq_pairs": pairs}
