"""`bench int8`: what int8 buys and costs, model by model and runtime by runtime, on one machine.

For every model x backend, the fp32 artifact and the int8 one are timed in lockstep (both resident,
alternating windows, the scheduler `bench ab` uses), so their ratio holds on a
shared machine: the speed-up is the median of the paired fp32/int8 window ratios with its bootstrap CI
over pairs, stored in the int8 record (`speedup`). With `--data` (and `--weights`), the int8 artifact's
accuracy is measured against PyTorch fp32 on the same images (`bench accuracy -p int8`), Δtop-1 with
its paired CI. The study's folder holds both sides as ordinary runs (`fp32/`, `int8/`), the pairs, and
`int8.md`: the leaderboard with the int8-beside-fp32 table and the fp32 → int8 plots (the paper's
Figure 1 with int8 points).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.measure.inputs import Inputs, Stores
from harness.measure.jobs import Job
from harness.measure.launch import Launcher
from harness.measure.protocol import ProtocolConfig
from harness.store import records
from harness.store import runs as store
from harness.store.record import Record
from harness.track.compare import paired_figures

# what `bench int8` studies without -m: the mission's MobileOne beside the two baselines int8 is usually asked of
STUDY_MODELS = ("mobileone_s0", "mobilenetv2_100", "efficientnet_b0")
from harness.track.lockstep import Paired, Pairing, Side, run_lockstep


@dataclass
class Study:
    folder: Path
    fp32: list[Record]
    int8: list[Record]
    accuracy: list[dict[str, Any]]
    report: Path | None = None


def speedup(paired: Paired) -> dict[str, Any]:
    """fp32/int8 from the pairs' int8/fp32 window ratios: the median and its CI, inverted; the two sides'
    milliseconds as the medians of the same paired windows (so they divide to about the ratio)."""
    ratio, lo, hi, floor = paired_figures(paired)
    return {"ratio": 1 / ratio, "ci_low": 1 / hi, "ci_high": 1 / lo, "pairs": len(paired.base),
            "fp32_ms": float(np.median(paired.base)) / 1e6, "int8_ms": float(np.median(paired.cand)) / 1e6,
            "method": "lockstep: median of paired fp32/int8 window ratios, bootstrap 95% CI over pairs",
            "aa_floor": floor, "over": "fp32"}


def partners(int8_jobs: list[Job]) -> list[Job]:
    """Each int8 job's fp32 partner: the same key at fp32 with the backend's default options."""
    return [dataclasses.replace(job, precision="fp32", options="") for job in int8_jobs]


def run_study(int8_jobs: list[Job], cfg: ProtocolConfig, folder: Path, stores: Stores, *, inputs: Inputs,
              pairing: Pairing = Pairing(20, 0.1), progress: Callable | None = None,
              say: Callable[[str], None] | None = None, evaluate: Callable[[Job], dict[str, Any]] | None = None,
              launcher: Launcher | None = None) -> Study:
    """Time every int8 job against its fp32 partner in lockstep (each pair where `launcher` puts it: this
    machine, or a lab's node); then `evaluate(job)` (the accuracy record of its int8 artifact) for each one
    measured, when given."""
    if any(job.precision != "int8" for job in int8_jobs):
        raise HarnessError("bench int8 plans its own jobs: every job it is given is int8")
    index_db = stores.index_db
    sides = (Side("fp32", weights=inputs.weights), Side("int8", weights=inputs.weights))
    base, cand, paired = run_lockstep(list(zip(partners(int8_jobs), int8_jobs)), cfg, sides, folder, stores, pairing,
                                      progress=progress, say=say, calibration=inputs.calibration, launcher=launcher)
    by_key = {p.key: p for p in paired}
    for i, (job, rec) in enumerate(zip(int8_jobs, cand)):
        if rec.ok and job.key in by_key:
            cand[i] = rec = rec.revised(speedup=speedup(by_key[job.key]))
            path = folder / "int8" / "records" / f"{job.id}.json"
            records.write_record(path, rec.as_document())
            if index_db is not None:
                store.index_record(index_db, rec, path)
    measured = []
    if evaluate is not None:
        measured = [evaluate(job) for job, rec in zip(int8_jobs, cand) if rec.ok]
    return Study(folder, base, cand, measured)
