"""benchmarks/gpu_check.sh without a GPU: the wheel download, the offline --no-deps install into a fresh
environment, and the skip paths, as far as this machine can take them (the CUDA steps need the GPU machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PYVER = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("whl")
    done = subprocess.run(["bash", "benchmarks/fetch_gpu_wheels.sh", str(dest), PYVER], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return dest


def test_the_wheels_are_the_listed_names_at_the_pinned_versions(wheels: Path) -> None:
    listed = [line.strip() for line in (ROOT / "benchmarks" / "gpu_wheels.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    got = {}
    for whl in wheels.glob("*.whl"):
        name, version = whl.name.split("-")[:2]
        got[name.lower().replace("_", "-")] = version
    assert got == {name: pins[name] for name in listed}
    assert all(w.name.endswith("none-any.whl") or f"cp{PYVER.replace('.', '')}" in w.name for w in wheels.glob("*.whl"))


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run benchmarks/gpu_check.sh itself")
def test_the_check_installs_offline_and_reports_the_skips(wheels: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    # What the GPU machine's image has (torch, numpy, pytest, ...): this environment's packages, seen
    # through a .pth line; the project and the carried wheels are installed into the new one.
    # The image has a recent setuptools and wheel (the project builds with --no-build-isolation there).
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "setuptools>=68", "wheel"],
                   check=True, capture_output=True, timeout=300)
    site = next(env_dir.glob("lib/python*/site-packages"))
    (site / "image.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = tmp_path / "out"
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OUT": str(out), "GPU_CHECK_PYTHON": str(env_dir / "bin" / "python"),
                               "GPU_CHECK_WHEELS": str(wheels), "GPU_CHECK_MODELS": "mobileone_s0",
                               "GPU_CHECK_ALLOW_NO_GPU": "1", "PIP_NO_INDEX": "1"})
    log = (out / "gpu_check.log").read_text()
    assert done.returncode == 0, done.stdout[-3000:] + log[-3000:]
    for step in ("install", "machine", "prepare", "pytest", "sweep eager", "sweep compile-fp16", "report", "leaderboard"):
        assert f"-- {step} passed" in log, step
    assert "no GPU: only the CPU-side steps and the skip paths were exercised" in done.stdout
    summary = (out / "summary.md").read_text()
    assert "cross-check: skipped (no CUDA GPU is visible)" in summary and "failures: none" in summary
    assert "- torch: 4 skipped: no CUDA GPU is visible" in summary and "- tensorrt: 4 skipped:" in summary
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.log", "leaderboard.md", "records.tar.gz",
                                                     "show.txt", "summary.md"]
    listed = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "list", "--path", str(site)],
                            capture_output=True, text=True).stdout.lower()
    assert "onebench" in listed



def _rec(backend: str, boundary: str, p50_ms: float, status: str = "ok", passed: bool = True) -> dict:
    return {"job_id": f"m.{backend}.{boundary}", "job": {"model": "m", "backend": backend, "precision": "fp16", "boundary": boundary},
            "status": status, "parity": {"passed": passed}, "stats": {"p50": p50_ms * 1e6}, "message": None}


def test_the_report_checks_graph_launched_boundaries_and_parity() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from gpu_check_report import check
    finally:
        sys.path.pop(0)
    # eager: launch-bound, its two boundaries are two processes' launch loops; not a failure
    assert check([_rec("torch", "device", 1.42), _rec("torch", "end-to-end", 1.31)], gpu_visible=True) == []
    failures = check([_rec("torch-cudagraph", "device", 0.40), _rec("torch-cudagraph", "end-to-end", 0.30),
                      _rec("torch-compile", "device", 0.5, passed=False)], gpu_visible=True)
    assert len(failures) == 2
    assert "torch-cudagraph fp16: end-to-end p50 0.300 ms < device p50 0.400 ms" in failures[1]
    assert "parity failed" in failures[0]
    assert check([_rec("torch", "device", 1.0, status="error")], gpu_visible=True) != []
    assert check([_rec("torch", "device", 1.0, status="skipped")], gpu_visible=False) == []
