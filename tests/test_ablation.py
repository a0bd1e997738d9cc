"""The paper's ablation networks: 30 convs, every variant exports and runs, and `bench ablation` works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import model_zoo
from harness.publish import ablation
from model_zoo.ablation import ACTIVATIONS, BLOCKS, ConvLayer, DynamicReLU, DynamicShiftMax, conv_layers
from tests.helpers import bench


@pytest.mark.parametrize("name", [f"ablation_act_{a}" for a in ACTIVATIONS] + [f"ablation_block_{b}" for b in BLOCKS])
def test_every_variant_has_30_conv_layers_and_runs(name: str) -> None:
    model = model_zoo.create(name)
    assert conv_layers(model) == 30
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


@pytest.mark.parametrize("module", [DynamicReLU(8, per_channel=True), DynamicReLU(8, per_channel=False),
                                    DynamicShiftMax(8)], ids=["dyrelu_b", "dyrelu_a", "shift_max"])
def test_dynamic_activations_start_as_relu(module: torch.nn.Module) -> None:
    """With the coefficient network's output at zero (2 sigmoid(0) - 1 = 0) only the papers' initial
    coefficients remain: a1 = 1, every other 0, so both activations are max(x, 0)."""
    torch.nn.init.zeros_(module.hyper.fc2.weight)
    torch.nn.init.zeros_(module.hyper.fc2.bias)
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(module(x), torch.relu(x))
    torch.nn.init.normal_(module.hyper.fc2.bias)  # and the coefficients do depend on the input
    assert not torch.allclose(module(x), torch.relu(x))


def test_skip_and_se_are_where_they_say() -> None:
    skip = model_zoo.create("ablation_block_skip")
    layers = [m for m in skip.modules() if isinstance(m, ConvLayer)]
    assert sum(layer.residual for layer in layers) == 30 - 5  # every stride-1 layer; 5 layers change shape
    se = model_zoo.create("ablation_block_se")
    assert all(not isinstance(layer.se, torch.nn.Identity) for layer in se.modules() if isinstance(layer, ConvLayer))


@pytest.mark.slow
def test_bench_ablation_activations_through_onnxruntime(tmp_path: Path) -> None:
    done = bench("ablation", "activations", "--backend", "onnxruntime", "--preset", "quick", "--threads", "1", "--out", "abl",
                 "--format", "md", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    recs = [json.loads(f.read_text()) for f in (tmp_path / "abl" / "records").glob("*.json")]
    assert len(recs) == len(ACTIVATIONS) and all(r["status"] == "ok" and r["parity"]["passed"] for r in recs)
    assert "| relu | " in done.stdout and "(×1.00)" in done.stdout and "| dyrelu_b | " in done.stdout
    header, rows = ablation.table("activations", recs)
    assert header == ["variant", "onnxruntime"] and [r[0] for r in rows] == list(ACTIVATIONS)
