"""The deployed-graph rule on the ONNX export every CPU runtime consumes: a fused MobileOne keeps no branch
`Add` and no BatchNorm, its training form fails the same check, and a fused export that broke it would be
an error before anything is timed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import model_zoo
from backends.graph_rules import check_graph, deployed_rule, describe
from backends.onnx_export import OP_KINDS, checked_graph, export_onnx, graph_ops
from model_zoo.spec import DeployedGraph
from tests.tiny_mobileone import NAME as TINY


def _export(name: str, form: str, cache: Path) -> Path:
    torch.manual_seed(0)
    model = model_zoo.create(name, form=form)
    path, _ = export_onnx(model, name, f"{name}-{form}", 1, 64, cache)
    return path


@pytest.mark.parametrize("variant", ["s0", *(pytest.param(v, marks=pytest.mark.slow) for v in ("s1", "s2", "s3", "s4"))])
def test_fused_mobileone_exports_without_branches(variant: str, tmp_path: Path) -> None:
    path = _export(f"mobileone_{variant}", "fused", tmp_path)
    check = checked_graph(path, f"mobileone_{variant}", "fused")
    assert check["applies"] and check["passed"] and check["found"] == {}, describe(check)
    assert check["ops"]["Conv"] >= 20 and "BatchNormalization" not in check["ops"]
    if variant == "s4":  # its squeeze-excitation: pooled, gated by a sigmoid, multiplied back
        assert check["ops"]["Sigmoid"] > 0 and check["ops"]["Mul"] > 0


@pytest.mark.parametrize("name, adds", [(TINY, 5), pytest.param("mobileone_s0", 10, marks=pytest.mark.slow)])
def test_the_training_form_fails_and_a_bias_add_is_not_a_branch(name: str, adds: int, tmp_path: Path) -> None:
    path = _export(name, "train", tmp_path)
    check = checked_graph(path, name, "train")  # recorded, not raised: the form is allowed to branch
    assert not check["passed"] and check["found"]["add"] > adds and "BatchNormalization" in check["ops"]
    with pytest.raises(RuntimeError, match="breaks its deployed-graph rule: FAIL: .* add"):
        checked_graph(path, name, "fused")
    ops = graph_ops(path)  # from the sidecar now
    assert ops == check["ops"] and path.with_suffix(".ops.json").is_file()
    assert check_graph({"Add(constant)": 3, "Conv": 4}, OP_KINDS, DeployedGraph(("add",)))["passed"]
    assert deployed_rule("mobilenetv2_100") is None  # its inverted residuals add by design: no rule
