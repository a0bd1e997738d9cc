"""Checkpoint loading: timm's and the authors' names, wrappers, safetensors, and refusals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.utils.model import reparameterize_model

import model_zoo
from tests.helpers import FULL_SIZE, max_rel_err, randomize_bn


def _timm_mobileone(variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_bn(timm.create_model(f"mobileone_{variant}", pretrained=False), seed=3).eval()


@pytest.mark.parametrize("variant", FULL_SIZE)
def test_timm_weights_give_timm_outputs(variant: str, tmp_path: Path) -> None:
    """timm's randomized mobileone_sX, saved under timm's names, loads into ours (both forms) and
    ours computes what timm computes; the same weights under the authors' names load too."""
    reference = _timm_mobileone(variant)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    torch.save(reference.state_dict(), tmp_path / "timm_unfused.pth")
    reference_fused = reparameterize_model(reference)
    torch.save(reference_fused.state_dict(), tmp_path / "timm_fused.pth")
    with torch.no_grad():
        want = reference(x)
        ours_train = model_zoo.create(f"mobileone_{variant}", form="train", weights=tmp_path / "timm_unfused.pth")
        assert max_rel_err(ours_train(x), want) < 1e-5
        ours_fused = model_zoo.create(f"mobileone_{variant}", form="fused", weights=tmp_path / "timm_unfused.pth")
        assert max_rel_err(ours_fused(x), want) < 1e-5
        from_fused = model_zoo.create(f"mobileone_{variant}", form="fused", weights=tmp_path / "timm_fused.pth")
        assert max_rel_err(from_fused(x), reference_fused(x)) < 1e-6
        # The authors' names: our own state dict, wrapped as their training script saves it.
        torch.save({"state_dict": {f"module.{k}": v for k, v in ours_train.state_dict().items()}, "epoch": 300},
                   tmp_path / f"mobileone_{variant}_unfused.pth.tar")
        authors = model_zoo.create(f"mobileone_{variant}", form="fused", weights=tmp_path / f"mobileone_{variant}_unfused.pth.tar")
        assert max_rel_err(authors(x), want) < 1e-5


def test_safetensors_and_model_wrapper(tmp_path: Path) -> None:
    model = randomize_bn(model_zoo.create("mobileone_s1", form="fused"))
    save_file(model.state_dict(), str(tmp_path / "s1.safetensors"))
    torch.save({"model": model.state_dict()}, tmp_path / "s1.pth")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for name in ("s1.safetensors", "s1.pth"):
            assert torch.equal(model_zoo.create("mobileone_s1", weights=tmp_path / name)(x), model(x))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this-should-never-run",))


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": model_zoo.create("mobileone_s0").state_dict(), "hook": _RunsCode()}, path)
    with pytest.raises(model_zoo.CheckpointError, match="refusing to load .*could run code"):
        model_zoo.create("mobileone_s0", weights=path)


@pytest.mark.parametrize("content, match", [
    (None, "truncated or not a checkpoint"),
    (b"definitely not a checkpoint", "truncated or not a checkpoint"),
])
def test_truncated_or_foreign_file_is_one_line(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "bad.pth"
    if content is None:
        torch.save(model_zoo.create("mobileone_s0").state_dict(), path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(model_zoo.CheckpointError, match=match) as info:
        model_zoo.create("mobileone_s0", weights=path)
    assert "\n" not in str(info.value)


def test_bad_safetensors_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(model_zoo.CheckpointError, match="not a readable safetensors"):
        model_zoo.create("mobileone_s0", weights=tmp_path / "x.safetensors")
    with pytest.raises(model_zoo.CheckpointError, match="does not exist"):
        model_zoo.create("mobileone_s0", weights=tmp_path / "nope.pth")


def test_mismatch_names_missing_unexpected_and_wrong_shape(tmp_path: Path) -> None:
    state = model_zoo.create("mobileone_s0", form="fused").state_dict()
    state.pop("stage1.0.reparam_conv.bias")
    state["extra.weight"] = torch.zeros(1)
    state["linear.weight"] = torch.zeros(10, 1024)
    torch.save(state, tmp_path / "m.pth")
    with pytest.raises(model_zoo.CheckpointError) as info:
        model_zoo.create("mobileone_s0", weights=tmp_path / "m.pth", num_classes=1000)
    msg = str(info.value)
    assert "missing 1: stage1.0.reparam_conv.bias" in msg
    assert "unexpected 1: extra.weight" in msg
    assert "wrong shape 1: linear.weight (10, 1024) (model: (1000, 1024))" in msg


def test_fused_checkpoint_cannot_give_the_training_form(tmp_path: Path) -> None:
    torch.save(model_zoo.create("mobileone_s0", form="fused").state_dict(), tmp_path / "f.pth")
    with pytest.raises(model_zoo.CheckpointError, match="cannot be unfused"):
        model_zoo.create("mobileone_s0", form="train", weights=tmp_path / "f.pth")


def test_timm_baseline_loads_timm_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = timm.create_model("mobilenetv2_100", pretrained=False).eval()
    torch.save(reference.state_dict(), tmp_path / "mnv2.pth")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model_zoo.create("mobilenetv2_100", weights=tmp_path / "mnv2.pth")(x), reference(x))


@pytest.mark.slow
def test_nan_weights_are_failed_parity_records_and_the_sweep_goes_on(tmp_path: Path) -> None:
    import json

    from harness.measure.parity import compare
    from tests.helpers import bench

    nan = compare(np.full((1, 10), np.nan), np.ones((1, 10)), "fp32")
    assert not nan.passed and nan.non_finite == 10 and nan.cosine is None
    json.dumps(nan.as_dict(), allow_nan=False)  # what the record writer does: no NaN reaches it

    model = model_zoo.create("mobileone_s0", form="fused")
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                for k, v in model.state_dict().items()}, tmp_path / "nan.pth")
    done = bench("run", "--preset", "quick", "-m", "mobileone_s0", "-b", "torch", "-b", "onnxruntime", "--weights",
                 str(tmp_path / "nan.pth"), "--out", "run", "--wait-quiet", "0", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    recs = [json.loads(p.read_text()) for p in (tmp_path / "run" / "records").glob("*.json")]
    assert sorted(r["job"]["backend"] for r in recs) == ["onnxruntime", "torch"]
    for rec in recs:
        assert rec["status"] == "ok" and not rec["parity"]["passed"] and rec["parity"]["non_finite"] > 0
        assert "non-finite values" in rec["message"]


@pytest.mark.parametrize("name", ["mobileone_s0", "mobilenetv2_100"])
def test_a_checkpoint_trained_on_other_classes_loads_with_its_own_head(name: str, tmp_path: Path) -> None:
    """A network fine-tuned on 10 classes: its head says so, and every command loads it without --num-classes."""
    torch.save(model_zoo.create(name, form="fused", num_classes=10).state_dict(), tmp_path / "ten.pth")
    model = model_zoo.create(name, weights=tmp_path / "ten.pth")
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
