"""Pinned reference workloads: what a job is timed beside, so that a stored figure survives the machine's moods.

On a shared VM a job's full-speed level itself moves within the hour (here up to 18%), so milliseconds
measured an hour apart do not repeat. A fixed workload timed in the same process, window for window with
the job (the paired scheduler, `harness.measure.paired`), slows with it; the job's time over the
reference's is the *relative figure* that history and the nightly track.

A reference is pinned: seeded weights, fixed shapes, at the job's thread count. The candidates are
PyTorch modules (always installed) and MobileOne-S0 run by ONNX Runtime from the harness's own cached
export (the model the issue's first experiment used). Its identity (name and the releases of the
libraries that run it) is stored in every record; relative figures are only compared between records
with the same identity, so an upgrade of those libraries starts a new history series instead of
hiding inside one.

Which reference a job gets was chosen by measurement (`benchmarks/reference_choice.py`, docs/protocol.md,
"Relative figures"): `for_job`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harness.measure.paired import Step, host_timed

REFERENCE_SEED = 0


def _conv_dense() -> torch.nn.Module:
    return torch.nn.Sequential(*[torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(6)])


def _conv_depthwise() -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for _ in range(4):
        layers += [torch.nn.Conv2d(96, 96, 3, padding=1, groups=96), torch.nn.ReLU(), torch.nn.Conv2d(96, 96, 1),
                   torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def _attention() -> torch.nn.Module:
    return torch.nn.TransformerEncoderLayer(192, 4, 384, dropout=0.0, batch_first=True)


def _mobileone_s0() -> torch.nn.Module:
    import model_zoo

    return model_zoo.create("mobileone_s0", form="fused")


# name -> (module builder, input shape)
CANDIDATES: dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...]]] = {
    "conv-dense": (_conv_dense, (1, 32, 56, 56)),
    "conv-depthwise": (_conv_depthwise, (1, 96, 56, 56)),
    "attention": (_attention, (1, 196, 192)),
    "mobileone_s0-torch": (_mobileone_s0, (1, 3, 224, 224)),
}


def _ort_mobileone_s0(threads: int, cache_dir: Path) -> Step:
    """MobileOne-S0 (fused, seeded weights) opened by the built-in ONNX Runtime backend, as a sweep job of it
    would be: its cached export, its session options, its I/O binding. The built-in class, not the registry's
    entry, so a plugin that wraps `onnxruntime` on one side never touches the reference. Passive wait: idle
    while the job has the turn, its pool must not take the job's core."""
    from backends.base import OpenContext
    from backends.onnxruntime_cpu import OnnxRuntimeCPU
    from harness.measure.jobs import Job
    from model_zoo.weights import state_sha256

    torch.manual_seed(REFERENCE_SEED)
    net = _mobileone_s0().eval()
    x = np.random.default_rng(REFERENCE_SEED).standard_normal((1, 3, 224, 224), dtype=np.float32)
    session = OnnxRuntimeCPU().open(net, Job("mobileone_s0", "onnxruntime", threads=threads).spec(),
                                    OpenContext(cache_dir, state_sha256(net), x, passive_wait=True))
    return host_timed(session.run)


ORT_REFERENCE = "mobileone_s0-ort"
NAMES = (*CANDIDATES, ORT_REFERENCE)


def build(name: str, threads: int = 1, cache_dir: Path | None = None) -> Step:
    """The reference's step, warm: a seeded module in eval mode run under `inference_mode`, or the ONNX
    Runtime session of `mobileone_s0-ort` (its export cached under `cache_dir`)."""
    torch.set_num_threads(threads)
    if name == ORT_REFERENCE:
        from harness.store.runs import default_cache_dir

        step = _ort_mobileone_s0(threads, cache_dir or default_cache_dir())
    else:
        make, shape = CANDIDATES[name]
        torch.manual_seed(REFERENCE_SEED)
        module = make().eval()
        x = torch.from_numpy(np.random.default_rng(REFERENCE_SEED).standard_normal(shape, dtype=np.float32))

        def run() -> None:
            with torch.inference_mode():
                module(x)

        step = host_timed(run)
    for _ in range(5):
        step()
    return step


def identity(name: str) -> dict[str, str]:
    """What a relative figure is relative to: equal identities make relative figures comparable."""
    out = {"name": name, "torch": torch.__version__.split("+")[0]}
    if name == ORT_REFERENCE:
        from importlib.metadata import version

        out["onnxruntime"] = version("onnxruntime")
    return out


# The reference `auto` picks for every CPU job, chosen by measurement (`benchmarks/reference_choice.py`,
# docs/protocol.md "Relative figures"): over six trials in 43 minutes on the 2-vCPU host, ONNX Runtime MobileOne-S0
# held the ratio within 3% in 76% of trial pairs 20+ minutes apart (18 jobs on four runtimes), against
# 64% for the best PyTorch candidate (`conv-dense`) and 58% for the milliseconds; the best per model
# family was it or changed from trial to trial, so one reference serves all. Without ONNX Runtime
# installed, `conv-dense`.
AUTO = ORT_REFERENCE
FALLBACK = "conv-dense"


def for_job(job, choice: str = "auto") -> str | None:
    """The reference a job is timed beside: none for `choice` "none" and for jobs off this CPU (a GPU's or
    a phone's time does not move with this CPU's)."""
    if choice == "none" or job.device != "cpu":
        return None
    if choice != "auto":
        return choice
    from backends.onnxruntime_cpu import OnnxRuntimeCPU

    return AUTO if OnnxRuntimeCPU().availability().ok else FALLBACK
