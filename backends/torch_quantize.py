"""int8 for Inductor: PyTorch 2 export quantization (PT2E) with the x86 Inductor quantizer.

The fused model is exported (`torch.export`), annotated by `X86InductorQuantizer` (its default
config: per-channel symmetric int8 weights, affine uint8 activations), calibrated on the job's
calibration inputs, converted (`convert_pt2e`), and then packaged ahead of time like fp32, with
Inductor's `freezing` on: that is the pass that lowers quantize/dequantize patterns to oneDNN's int8
convolutions. PT2E lives in torchao since PyTorch 2.10 (`torch.ao.quantization.quantize_pt2e` left).
"""

from __future__ import annotations

import collections
import copy
import math
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
    with torch.no_grad():
        exported = torch.export.export(model.float().eval(), (example,)).module()
        converted = _converted(exported, calibration, batch, reduce_range, float_layers)
    return converted, fx_graph(converted)


def _converted(exported: Any, calibration: Calibration, batch: int, reduce_range: bool,
               float_layers: list[str] | None) -> Any:
    """An exported module annotated by the x86 Inductor quantizer, calibrated and converted."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range))
    for name in float_layers or []:
        quantizer.set_module_name_qconfig(name, None)
    with torch.no_grad():
        prepared = prepare_pt2e(exported, quantizer)
        for x in calibration.batches(batch):
            prepared(torch.from_numpy(x))
        return convert_pt2e(prepared)


def layer_errors(model: nn.Module, example: torch.Tensor, calibration: Calibration, batch: int, reduce_range: bool,
                 float_layers: list[str] | None, inputs: list[Any]) -> list[dict[str, Any]]:
    """Each computed tensor of the PT2E int8 graph against the fp32 graph's, from PT2E's own numeric debugger
    (`generate_numeric_debug_handle`, `prepare_for_propagation_comparison`, `compare_results`): the SQNR
    accumulated to that node, averaged over `inputs`, named by the module that owns the node."""
    from torchao.quantization.pt2e import (
        compare_results,
        extract_results_from_loggers,
        generate_numeric_debug_handle,
        prepare_for_propagation_comparison,
    )

    with torch.no_grad():
        program = torch.export.export(model.float().eval(), (example,))
        generate_numeric_debug_handle(program)
        fp32 = program.module()
        order = {node.name: i for i, node in enumerate(fp32.graph.nodes)}
        targets = {node.name: str(node.target) for node in fp32.graph.nodes}
        producer = {node.name: node.args[0].name for node in fp32.graph.nodes
                    if node.args and isinstance(node.args[0], torch.fx.Node)}
        modules = {node.name: _owner(node.meta.get("nn_module_stack")) for node in fp32.graph.nodes}
        converted = _converted(copy.deepcopy(fp32), calibration, batch, reduce_range, float_layers)
        logged_fp32, logged_int8 = prepare_for_propagation_comparison(fp32), prepare_for_propagation_comparison(converted)
        for x in inputs:
            logged_fp32(torch.from_numpy(x))
            logged_int8(torch.from_numpy(x))
    rows = []
    for summary in compare_results(extract_results_from_loggers(logged_fp32),
                                   extract_results_from_loggers(logged_int8)).values():
        name = summary.ref_node_name
        values = [float(r.sqnr) for r in summary.results]
        if name not in order or not values:
            continue
        finite = [v for v in values if math.isfinite(v)]
        rows.append({"tensor": name, "layer": modules.get(name) or name,
                     "op": targets[name].replace("aten.", "").split(".")[0], "depth": order[name],
                     "compute_layer": _compute_of(name, targets, producer, modules),
                     "sqnr_db": round(sum(finite) / len(finite), 2) if finite else None, "qdq_sqnr_db": None})
    return sorted(rows, key=lambda r: r["depth"])


def _owner(stack: Any) -> str:
    """The innermost module of a node's `nn_module_stack` ({key: (path, type)}), as `named_modules` names it."""
    if not isinstance(stack, dict) or not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path.removeprefix("L['self'].") if isinstance(path, str) else ""


def _compute_of(name: str, targets: dict[str, str], producer: dict[str, str], modules: dict[str, str]) -> str | None:
    """The convolution or linear layer (module name) this node's tensor comes from, through up to 8 single-input ops."""
    for _ in range(8):
        if any(t in targets.get(name, "") for t in COMPUTE_TARGETS):
            return modules.get(name) or None
        if name not in producer:
            return None
        name = producer[name]
    return None


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
