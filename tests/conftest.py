"""Shared fixtures: tests build their own models and files; nothing is downloaded."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items) -> None:
    """`gpu`-marked tests (run them alone with `pytest -m gpu`) are skipped with the reason where no CUDA
    GPU is visible, so the CPU suite and benchmarks/gpu_check.sh select them the same way."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
