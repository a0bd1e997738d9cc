"""`tiny_mobileone`: MobileOne's structure at a fraction of its size, for tests of behaviour, not of the network.

One (depthwise, pointwise) block pair per stage, narrow widths, k=2 branches, one squeeze-excite block, 64x64
input: every path a MobileOne takes (branches to fold, the skip branch, SE, the deployed-graph rule, the
fused-checkpoint marker) in milliseconds. Registered through the ordinary registry (`ONEBENCH_PLUGINS=
tests.tiny_mobileone` for `bench` subprocesses; importing this module is enough in-process); the full-size
S0 keeps one test per path."""

from __future__ import annotations

from model_zoo import mobileone
from model_zoo.registry import get_spec, list_specs, register
from model_zoo.spec import ModelSpec, Preprocess, Reference

NAME = "tiny_mobileone"
VARIANT = mobileone.MobileOneVariant((0.25, 0.25, 0.25, 0.25), branches=2, se_blocks=(0, 0, 1, 0), blocks=(1, 1, 1, 1))

if NAME not in {s.name for s in list_specs()}:
    s0 = get_spec("mobileone_s0")
    register(ModelSpec(
        name=NAME, family="test",
        build=lambda form, num_classes: mobileone.MobileOne(VARIANT, num_classes=num_classes, fused=form == "fused"),
        reference=Reference(source="test network (MobileOne's structure, one block pair per stage)"),
        preprocess=Preprocess(input_size=64), reparameterizable=True, fused_graph=s0.fused_graph,
        fused_state_marker=s0.fused_state_marker, num_classes=10, description="tiny MobileOne for tests",
    ))
