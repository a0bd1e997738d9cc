"""MobileOne: exact reparameterization, and figures that match the authors' release."""

from __future__ import annotations

import pytest
import torch

import model_zoo
from model_zoo.mobileone import VARIANTS, MobileOneBlock
from tests.helpers import FULL_SIZE, REFERENCE, max_rel_err, randomize_bn


@pytest.mark.parametrize("variant", FULL_SIZE)
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-9)])
def test_fused_equals_training_form(variant: str, dtype: torch.dtype, tol: float) -> None:
    seed = list(VARIANTS).index(variant)  # not hash(variant): Python salts it per process
    train = randomize_bn(model_zoo.create(f"mobileone_{variant}", form="train"), seed=seed).to(dtype)
    before = {k: v.clone() for k, v in train.state_dict().items()}
    fused = model_zoo.reparameterize(train)
    x = torch.randn(2, 3, 96, 96, dtype=dtype, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        err = max_rel_err(fused(x), train(x))
    assert err < tol, f"{variant} {dtype}: fused vs train max relative error {err:.3g}"
    assert model_zoo.is_fused(fused) and not model_zoo.is_fused(train)
    after = train.state_dict()  # the original is untouched
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_fusion_catches_a_wrong_branch() -> None:
    """The exactness test above must be able to fail: drop one branch from the fused kernel."""
    block = randomize_bn(MobileOneBlock(8, 8, 3, groups=8, branches=2)).double().eval()
    fused = model_zoo.reparameterize(block)
    x = torch.randn(1, 8, 10, 10, dtype=torch.float64)
    with torch.no_grad():
        assert max_rel_err(fused(x), block(x)) < 1e-12
        fused.reparam_conv.bias.sub_(block.rbr_skip.bias)  # drop the skip branch's shift
        assert max_rel_err(fused(x), block(x)) > 1e-3


@pytest.mark.parametrize("variant", FULL_SIZE)
def test_params_and_macs_match_reference(variant: str) -> None:
    spec = model_zoo.get_spec(f"mobileone_{variant}")
    train = model_zoo.create(spec.name, form="train")
    fused = model_zoo.reparameterize(train)
    assert model_zoo.count_params(train) == spec.reference.params_train
    assert model_zoo.count_params(fused) == spec.reference.params
    macs = model_zoo.count_macs(fused, 224) / 1e6
    assert abs(macs / spec.reference.macs_m - 1) < 0.005, macs


@pytest.mark.parametrize("variant", FULL_SIZE)
def test_state_dict_names_are_the_authors(variant: str) -> None:
    for form, suffix in (("train", "unfused"), ("fused", "fused")):
        ours = {k: list(v.shape) for k, v in model_zoo.create(f"mobileone_{variant}", form=form).state_dict().items()}
        assert ours == REFERENCE[f"apple_mobileone_{variant}_{suffix}"]["state_dict"]


def test_fusing_builds_the_kernel_on_the_weights_device() -> None:
    """A model on a GPU fuses there; the meta device stands in for it here (a CPU-built kernel added to
    the branches' tensors fails on any other device)."""
    with torch.device("meta"):
        train = model_zoo.create("mobileone_s0", form="train")
    fused = model_zoo.reparameterize(train)
    assert all(p.device.type == "meta" for p in fused.parameters())
    assert model_zoo.is_fused(fused)
