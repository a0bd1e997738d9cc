"""`bench profile` end to end on the real runtimes: a compiled package's kernels and convolution calls named,
MobileOne's training form against the fused one (what the branches cost), int8 against fp32 (integer kernels
counted per kind)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import bench

pytestmark = pytest.mark.slow
ENV = {"ONEBENCH_PLUGINS": "tests.tiny_mobileone"}


def _profile(tmp_path: Path, *args: str) -> dict:
    done = bench("profile", "-m", "tiny_mobileone", "--iterations", "4", "--format", "json", "--out", str(tmp_path / "run"),
                 *args, cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_compiled_packages_convolutions_are_named_and_its_kernels_profiled(tmp_path: Path) -> None:
    rec = _profile(tmp_path, "-b", "torch-compile")
    convs = [r for r in rec["rows"] if r["kind"].startswith("conv")]
    assert convs and all(r["layer"] for r in convs), convs  # every convolution call named by its module
    assert any(r["name"].startswith(("cpp_fused", "graph_")) for r in rec["rows"])  # Inductor's own kernels
    assert rec["totals"]["ops_ms"] > 0 and rec["profiler"]["tool"].startswith("torch.profiler")


def test_the_training_forms_branches_and_int8s_kernels_show_against_the_fused_fp32_form(tmp_path: Path) -> None:
    pair = _profile(tmp_path, "-b", "onnxruntime", "--compare", "form=train")
    fused, trained = pair["a"], pair["b"]
    count = lambda rec: sum(k["count"] for k in rec["kinds"] if k["kind"].startswith("conv"))  # noqa: E731
    assert count(trained) > count(fused)  # the branches, each a convolution the fused form folded away
    assert fused["totals"]["ops_ms"] > 0 < trained["totals"]["ops_ms"]  # what the branches cost is a benchmark's
    quantized = _profile(tmp_path, "-b", "openvino", "-p", "int8")
    convs = [k for k in quantized["kinds"] if k["kind"].startswith("conv")]
    assert convs and all(k["int8"] == k["count"] for k in convs), convs  # every convolution ran an int8 kernel
