"""What several test files share: the CLI as a subprocess, a valid record, the authors' state-dict shapes.

Test files import from here (or from the other helper modules: fake_backends, synthetic, colour_model,
browser), never from one another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).parents[1]
# the published checkpoints' state-dict names and shapes (from ../shared/reference, kept in the repository)
REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_state_dicts.json").read_text())


def bench(*args: str, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # ONEBENCH_TEST_CACHE shares compiled artifacts between tests (benchmarks/gpu_check.sh sets it)
    cache = os.environ.get("ONEBENCH_TEST_CACHE") or str(cwd / "cache")
    env = {**os.environ, "ONEBENCH_CACHE": cache, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout)


# MobileOne S0 runs in the fast lane; S1-S4 (the same code at full width) in the slow one
FULL_SIZE = ["s0", *(pytest.param(v, marks=pytest.mark.slow) for v in ("s1", "s2", "s3", "s4"))]

RECORD = {
    "schema_version": 2, "run_id": "r1", "job_id": "j1", "created": "2026-11-24T00:00:00+00:00",
    "job": {"model": "m", "backend": "torch", "form": "fused", "device": "cpu", "precision": "fp32", "batch": 1,
            "threads": 2, "boundary": "host-sync", "input_size": 224},
    "status": "ok", "message": "", "unstable": False, "unstable_reasons": [],
    "protocol": {"min_iters": 30, "min_s": 0.5, "max_s": 3.0, "target_rel_ci": 0.01, "repeats": 3},
    "host": {}, "model_info": {"params": 1}, "cold_start": {"build_s": 0.1},
    "processes": [{"samples_ns": [1, 2, 3], "summary": {"n": 3, "min": 1, "p50": 2, "p90": 3, "p99": 3,
                                                        "ci_low": 1, "ci_high": 3}, "machine": {}}],
    "stats": {"p50": 2, "p90": 3, "ci_low": 1, "ci_high": 3, "spread": 0.0, "processes": 1, "throughput": 5e8},
    "parity": None, "artifact": {}, "backend_info": {}, "peak_rss_mb": 100.0,
}


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms: identity BNs hide fusing bugs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to the largest magnitude of the reference `b`."""
    return ((a - b).abs().max() / b.abs().max()).item()


class InProcessLauncher:
    """A launcher double that runs each step in this process, so a test's monkeypatches reach what the step
    decides (its isolation is what the other tests, on the real launchers, prove)."""

    concurrency, remote = 1, False

    def cannot_run(self, job) -> str | None:
        return None

    def submit(self, step):
        import importlib
        from concurrent.futures import Future

        from harness.measure.launch import Placed
        from harness.measure.outcomes import from_child

        module, _, name = step.target.partition(":")
        try:
            message: tuple = ("ok", getattr(importlib.import_module(module), name)(step.payload))
        except Exception as exc:  # noqa: BLE001 - as a step's process reports it
            message = ("error", f"{type(exc).__name__}: {exc}", "")
        done: Future = Future()
        done.set_result(Placed(from_child(message)))
        return done

    def lost(self, node: str) -> bool:
        return False

    def close(self) -> None:
        pass
