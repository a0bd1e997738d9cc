"""The int8 recipe (`-o int8.FIELD=VALUE`): cross-layer equalization on the torch model, layers kept in float,
and how the section travels (int8 jobs only, the key, the backend's own configuration untouched). The real
quantizers on digits-trained networks are in the slow lane (`test_int8_digits.py`)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import model_zoo
from backends.base import JobSpec
from backends.onnxruntime_cpu import OnnxRuntimeCPU
from backends.options import ConfigError, canonical
from harness.errors import HarnessError
from harness.measure import recipe
from harness.measure.planner import jobs as planned
from harness.measure.selection import Selection, of_job
from model_zoo.equalize import channel_spread, equalize, pairs
from tests.digits import DigitsCNN
from tests.tiny_mobileone import NAME as TINY

FACTOR = 1000.0


def _imbalanced() -> nn.Module:
    """A conv-ReLU-conv network with output channel 0 of the first conv scaled up by FACTOR and input channel 0
    of the second scaled down to match: the same function, one weight range 1000x the others."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    with torch.no_grad():
        net[0].weight[0] *= FACTOR
        net[0].bias[0] *= FACTOR
        net[2].weight[:, 0] /= FACTOR
    return net


def _per_tensor_int8(net: nn.Module) -> nn.Module:
    """Every convolution's weights through a symmetric per-tensor int8 grid (what a per-tensor quantizer does
    to them), the rest untouched."""
    quantized = copy.deepcopy(net)
    with torch.no_grad():
        for m in quantized.modules():
            if isinstance(m, nn.Conv2d):
                scale = float(m.weight.abs().max()) / 127
                m.weight.copy_(torch.fake_quantize_per_tensor_affine(m.weight, scale, 0, -127, 127))
    return quantized


def _relative_error(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    """|b(x) - a(x)| / |a(x)| over the batch's logits (centred per image, so a shared bias cannot hide a loss)."""
    with torch.no_grad():
        ya, yb = a(x), b(x)
        ya, yb = ya - ya.mean(1, keepdim=True), yb - yb.mean(1, keepdim=True)
        return float((yb - ya).norm() / ya.norm())


def test_equalization_repairs_a_planted_imbalance_that_per_tensor_int8_collapses() -> None:
    net = _imbalanced()
    x = torch.randn(256, 3, 8, 8)
    collapsed = _relative_error(net, _per_tensor_int8(net), x)
    equalized, found = equalize(copy.deepcopy(net))
    assert [(p.first, p.second) for p in found] == [("0", "2")]
    with torch.no_grad():
        assert torch.allclose(equalized(x), net(x), rtol=1e-4, atol=1e-5)  # the same function
    repaired = _relative_error(net, _per_tensor_int8(equalized), x)
    assert channel_spread(net)["0"] > 100 and channel_spread(equalized)["0"] < 10
    assert collapsed > 0.1 and repaired < 0.01, (collapsed, repaired)  # measured: 0.17 and 0.0009


def test_equalization_folds_batch_norms_and_keeps_a_fused_mobileone_the_same_function() -> None:
    torch.manual_seed(0)
    cnn = DigitsCNN().eval()
    x = torch.randn(4, 3, 32, 32)
    equalized, found = equalize(copy.deepcopy(cnn))
    assert len(found) == 3 and not any(isinstance(m, nn.BatchNorm2d) for m in equalized.modules())
    with torch.no_grad():
        assert torch.allclose(equalized(x), cnn(x), atol=1e-5)
    tiny = model_zoo.create(TINY, form="fused").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = tiny(x)
        found = pairs(tiny)
        equalize(tiny)
        assert torch.allclose(tiny(x), before, rtol=1e-4, atol=1e-6)
    names = {p.first for p in found} | {p.second for p in found}
    assert found and all(n.endswith(("reparam_conv", ".se.reduce", ".se.expand")) for n in names)
    # a squeeze-excite block scales channels by a function of the input: its block is never equalized across
    se_block = next(n for n, m in tiny.named_modules() if type(m).__name__ == "SqueezeExcite").rsplit(".", 1)[0]
    assert not any(p.first == f"{se_block}.reparam_conv" for p in found)


def test_the_recipe_rides_on_int8_jobs_only_and_stays_out_of_the_backends_configuration() -> None:
    jobs = planned(Selection(models=[TINY], backends=["onnxruntime"], precisions=["fp32", "int8"], threads=1, options=["onnxruntime.per_channel=false", "int8.equalize=true"]))
    fp32, int8 = sorted(jobs, key=lambda j: j.precision)
    assert fp32.options == "per_channel=false" and int8.options == "per_channel=false,int8.equalize=true"
    assert int8.id.endswith(".per_channel_false_int8.equalize_true")  # the recipe is in the key and the id
    spec = int8.spec()
    assert spec.config(OnnxRuntimeCPU()).per_channel is False and spec.recipe().equalize
    assert not fp32.spec().recipe().active
    again = planned(of_job(int8, Selection()).but(precisions=("fp32", "int8")))  # a planned job again, no -o round trip
    assert {j.precision: j.options for j in again} == {"fp32": "per_channel=false", "int8": int8.options}
    assert canonical(OnnxRuntimeCPU(), "int8.equalize=true,per_channel=false") == int8.options
    with pytest.raises(ConfigError, match="per_channel"):
        canonical(OnnxRuntimeCPU(), "per_channel=maybe")


def test_the_recipe_equalizes_the_model_an_int8_job_opens_and_nothing_else() -> None:
    tiny = model_zoo.create(TINY, form="fused").eval()
    same, done = recipe.apply(tiny, JobSpec(model=TINY, backend="onnxruntime", precision="fp32",
                                             options="int8.equalize=true"))
    assert same is tiny and done == {}
    _, done = recipe.apply(tiny, JobSpec(model=TINY, backend="onnxruntime", precision="int8", options="int8.equalize=true"))
    assert done["recipe"] == {"equalize": True, "float_layers": ""} and done["equalized"]["pairs"] > 0


@pytest.mark.parametrize("option, needle", [
    ("int8.float_layers=stage1.0.reparam_cnv", "has no convolution or linear layer 'stage1.0.reparam_cnv'; did you mean "
                                               "stage1.0.reparam_conv"),
    ("int8.colour=red", "int8 has no option 'colour'"),
    ("int8.equalize=maybe", "int8.equalize takes a bool"),
])
def test_a_bad_recipe_is_refused_before_any_work(option: str, needle: str) -> None:
    with pytest.raises(HarnessError, match=needle):
        planned(Selection(models=[TINY], backends=["onnxruntime"], precisions=["int8"], threads=1, options=[option]))


def test_a_recipe_without_an_int8_job_is_refused() -> None:
    with pytest.raises(HarnessError, match="changes int8 jobs: add -p int8"):
        planned(Selection(models=[TINY], backends=["onnxruntime"], precisions=["fp32"], threads=1, options=["int8.equalize=true"]))
