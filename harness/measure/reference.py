"""Pinned reference workloads: what a job is timed beside, so that a stored figure survives the machine's moods.

On a shared VM a job's full-speed level itself moves within the hour (here up to 18%), so milliseconds
measured an hour apart do not repeat. A fixed workload timed in the same process, window for window with
the job (the paired scheduler, `harness.measure.paired`), slows with it; the job's time over the
reference's, pair by pair, is the *relative figure* that history and the nightly track.

A reference is pinned: seeded weights, fixed shapes, built with PyTorch (always installed, so every job
can have one, and independent of the runtime under test, whichever it is) at the job's thread count. Its
identity (name and PyTorch release) is stored in every record; relative figures are only compared
between records with the same identity.

Which reference a job gets was chosen by measurement (`benchmarks/reference_choice.py`, README
"Relative figures"): `for_job`.
"""

from __future__ import annotations

from collections.abc import Callable

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


def build(name: str, threads: int = 1) -> Step:
    """The reference's step, warm: a seeded module in eval mode run under `inference_mode`."""
    make, shape = CANDIDATES[name]
    torch.set_num_threads(threads)
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
    return {"name": name, "torch": torch.__version__.split("+")[0]}


# The reference `auto` picks for every CPU job. Chosen by measurement (`benchmarks/reference_choice.py`,
# README "Relative figures"): of the candidates, the dense conv stack's ratio repeated best across trials
# spread over half an hour on the 2-vCPU host, for every model family; the best candidate per family
# changed from trial to trial (noise, not structure), so one reference serves all.
AUTO = "conv-dense"


def for_job(job, choice: str = "auto") -> str | None:
    """The reference a job is timed beside: none for `choice` "none" and for jobs off this CPU (a GPU's or
    a phone's time does not move with this CPU's)."""
    if choice == "none" or job.device != "cpu":
        return None
    return AUTO if choice == "auto" else choice

