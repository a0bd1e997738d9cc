"""Shared fixtures: tests build their own models and files; nothing is downloaded."""

from __future__ import annotations

import os

import pytest
import torch

# Tests run side by side (pytest-xdist): a sweep must not wait a minute for the neighbouring test to finish.
# They mark their runs "busy" instead, and no test asserts a figure's stability from a real measurement.
os.environ.setdefault("ONEBENCH_WAIT_QUIET", "0")
# The tests' Ray clusters (tests/test_cluster_e2e.py) stay on loopback: Ray otherwise advertises the address
# of this machine's network interface. Read when `ray` is imported, and by the cluster's processes.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# One artifact cache for the whole test session, every xdist worker included (they inherit this process's
# environment): artifacts are keyed by content and verified by their sha256 sidecar, so sharing is safe, and
# an export or compile one test made is loaded, not rebuilt, by the next.
if "ONEBENCH_TEST_CACHE" not in os.environ:
    import tempfile

    os.environ["ONEBENCH_TEST_CACHE"] = tempfile.mkdtemp(prefix="onebench-test-cache-")


def pytest_configure(config) -> None:
    """The slow lane's own torch work (training the digits network, the fusion checks) gets one thread per xdist
    worker: there two workers' OpenMP threads share two cores with valgrind counts, Ray nodes and spinning ONNX
    Runtime pools, and a fusion check that takes 0.3 s alone took 163 s in CI. The fast lane keeps torch's
    default (measured: 194 s with it, 212 s with one thread). Measured processes set their own threads."""
    if config.getoption("markexpr", "") == "slow":
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items) -> None:
    """`gpu`-marked tests (run them alone with `pytest -m gpu`) are skipped with the reason where no CUDA
    GPU is visible, so the CPU suite and benchmarks/gpu_check.sh select them the same way."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture
def fake_backends():
    """The runner's test doubles (`tests/fake_backends.py`) registered for one test, then removed."""
    from backends import registry
    from tests.fake_backends import ALL

    for name, ref in ALL.items():
        registry.register(name, ref)
    yield
    for name in ALL:
        registry.unregister(name)
