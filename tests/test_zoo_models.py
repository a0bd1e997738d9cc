"""Mobile-Former and the baselines: figures, the authors' names, and the registry's behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import model_zoo
from harness.cli import app
from model_zoo.mobileformer import VARIANTS as MF_VARIANTS
from tests.helpers import REFERENCE


@pytest.mark.parametrize("variant", list(MF_VARIANTS))
def test_mobileformer_params_and_macs(variant: str) -> None:
    spec = model_zoo.get_spec(f"mobileformer_{variant}")
    model = model_zoo.create(spec.name)
    assert abs(model_zoo.count_params(model) / spec.reference.params - 1) < 0.005
    macs = model_zoo.count_macs(model, 224, convention="fvcore") / 1e6
    assert abs(macs / spec.reference.macs_paper_m - 1) < 0.02, f"{macs:.1f}M vs paper {spec.reference.macs_paper_m}M"
    assert abs(macs / spec.reference.macs_m - 1) < 0.005


@pytest.mark.parametrize("variant", ["26m", "96m", "508m"])
def test_mobileformer_loads_the_authors_names_strictly(variant: str, tmp_path: Path) -> None:
    """A checkpoint with exactly the release's names and shapes (values made here) loads and runs."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in REFERENCE[f"mobileformer_{variant}"]["state_dict"].items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=g) + 0.5
        else:
            state[name] = torch.randn(shape, generator=g) * 0.05
    torch.save({"state_dict": state}, tmp_path / "mf.pth.tar")
    model = model_zoo.create(f"mobileformer_{variant}", weights=tmp_path / "mf.pth.tar")
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    with torch.no_grad():
        y = model(torch.randn(2, 3, 224, 224))
    assert y.shape == (2, 1000) and torch.isfinite(y).all()


def test_mobileformer_batch_items_are_independent() -> None:
    """Tokens are shared parameters but must be expanded per image, not mixed across the batch."""
    model = model_zoo.create("mobileformer_26m")
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mobilenetv2_100", "efficientnet_b0"])
def test_baselines_match_reference(name: str) -> None:
    spec = model_zoo.get_spec(name)
    model = model_zoo.create(name)
    assert model_zoo.count_params(model) == spec.reference.params
    assert abs(model_zoo.count_macs(model, 224) / 1e6 / spec.reference.macs_m - 1) < 0.005
    assert spec.preprocess.interpolation == "bicubic"  # timm's data config, not a default


def test_any_timm_model_and_unknown_names() -> None:
    model = model_zoo.create("timm:resnet18", num_classes=10)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(model_zoo.UnknownModelError, match="did you mean mobileone_s0"):
        model_zoo.get_spec("mobileone_so")
    with pytest.raises(model_zoo.UnknownModelError, match="unknown form"):
        model_zoo.create("mobileone_s0", form="deploy")


def test_mission_models() -> None:
    assert model_zoo.mission_models() == [
        "mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4",
        "mobileformer_508m", "mobileformer_294m", "mobilenetv2_100", "efficientnet_b0",
    ]


def test_cli_list_models() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["list", "models", "mobileone_s0", "mobileformer_52m"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "2,078,504 ✓" in result.output and "3,469,092 ✓" in result.output
    bad = runner.invoke(app, ["list", "models", "mobilone_s0"])
    assert bad.exit_code == 2
    assert "did you mean mobileone_s0" in bad.output and "Traceback" not in bad.output
