"""`bench prepare`: one build per artifact, several at once, each isolated; the sweep then only loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backends import registry
from harness.cli import app
from harness.measure.inputs import Stores
from harness.measure.jobs import plan
from harness.measure.prepare import artifact_jobs, prepare_artifacts
from harness.measure.protocol import preset
from harness.measure.runner import run_sweep
from tests.fake_backends import ALL

MODEL = "timm:test_byobnet"


def test_boundaries_share_one_artifact() -> None:
    jobs = plan([MODEL], ["torch", "torch-compile"], ["fp32", "fp16"], [1], 1, device="cuda")
    assert len(jobs) == 8 and {j.boundary for j in jobs} == {"device", "end-to-end"}
    unique = artifact_jobs(jobs)
    assert len(unique) == 4 and {(j.backend, j.precision) for j in unique} == {
        (b, p) for b in ("torch", "torch-compile") for p in ("fp32", "fp16")}


def test_a_crash_costs_its_artifact_only(tmp_path: Path) -> None:
    for name in ("fake-segfault", "fake-sleep", "fake-missing"):
        registry.register(name, ALL[name])
    try:
        jobs = plan([MODEL], ["fake-segfault", "fake-sleep", "fake-missing"], ["fp32"], [1], 1, input_sizes={MODEL: 64})
        seen = []
        results = {r.job.backend: r for r in prepare_artifacts(jobs, tmp_path / "cache", 2, done=seen.append)}
    finally:
        for name in ("fake-segfault", "fake-sleep", "fake-missing"):
            registry.unregister(name)
    assert len(seen) == 3
    assert results["fake-segfault"].status == "error" and "SIGSEGV" in results["fake-segfault"].message
    assert results["fake-sleep"].status == "ready"
    assert results["fake-missing"].status == "skipped" and results["fake-missing"].message


@pytest.mark.slow
def test_a_sweep_after_prepare_loads_the_prepared_export(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    jobs = plan([MODEL], ["onnxruntime"], ["fp32"], [1], 1, input_sizes={MODEL: 64})
    (built,) = prepare_artifacts(jobs, tmp_path / "cache", 1)
    assert built.status == "built" and Path(built.artifact).is_file() and built.cold["export_s"] > 0
    stamp = Path(built.artifact).stat().st_mtime_ns
    (rec,) = run_sweep(jobs, preset("quick", probe=False, min_s=0.05, max_s=0.1, warmup_s=0.01), tmp_path / "run", stores=Stores(cache_dir=tmp_path / "cache"))
    assert rec["status"] == "ok" and rec["artifact"]["path"] == built.artifact
    assert Path(built.artifact).stat().st_mtime_ns == stamp and not rec["cold_start"].get("export_s")


def test_cli_prepare_reports_each_artifact(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONEBENCH_CACHE", str(tmp_path / "cache"))
    done = CliRunner().invoke(app, ["prepare", "-m", MODEL, "-b", "torch", "-b", "tensorrt", "--workers", "2"])
    assert done.exit_code == 0, done.output
    assert "nothing to build" in done.stdout and "onebench[tensorrt]" in done.stdout
    assert "1 ready, 1 skipped, 0 failed" in done.stdout
    assert not list(tmp_path.rglob("records"))  # prepare times nothing and writes no records


@pytest.mark.slow
def test_jit_compile_caches_in_the_artifact_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path of torch-compile (`torch.compile` with Inductor's caches in the artifact cache), run on
    the CPU: the first compile writes the cache, a second process-like compile of a new module hits it."""
    import numpy as np
    import torch

    from backends.base import JobSpec, OpenContext
    from backends.torch_compile import inductor_cache_dir, jit_compile

    monkeypatch.setattr(torch._inductor.config, "compile_threads", 1)  # no worker pool to start for a tiny graph
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
    example = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ctx = OpenContext(tmp_path, "w", example)
    job = JobSpec(model="tiny", backend="torch-compile", device="cpu")
    first, cold = jit_compile(model, job, ctx, torch.float32, torch.contiguous_format)
    assert cold["inductor_cache_hit"] == 0 and cold["compile_s"] > 0
    assert any(inductor_cache_dir(ctx).rglob("*.py")), "Inductor wrote no code into the artifact cache"
    torch._dynamo.reset()
    again, cold = jit_compile(model, job, ctx, torch.float32, torch.contiguous_format)
    assert cold["inductor_cache_hit"] == 1
    x = torch.from_numpy(example)
    with torch.inference_mode():
        torch.testing.assert_close(again(x), model(x))
