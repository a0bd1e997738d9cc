"""Records built from synthetic samples, for testing comparison and history without measuring."""

from __future__ import annotations

import copy

import numpy as np

from harness.measure.stats import pool, summarize
from tests.helpers import RECORD


def record(samples: list[np.ndarray], model: str = "m", backend: str = "torch", unstable: bool = False,
           run_id: str = "r", created: str = "2026-11-24T00:00:00+00:00", cpu: str = "AMD EPYC",
           commit: str = "abc", probe_ns: float = 2.6e6) -> dict:
    rec = copy.deepcopy(RECORD)
    rec.update(run_id=run_id, created=created, unstable=unstable, unstable_reasons=["planted"] if unstable else [])
    rec["job"].update(model=model, backend=backend)
    rec["job_id"] = f"{model}.{backend}"
    rec["host"] = {"cpu": {"model": cpu, "logical_cores": 2}, "hostname": "h", "libraries": {"torch": "2.14.1"},
                   "project": {"commit": commit}}
    ints = [np.maximum(np.round(s), 1).astype(int) for s in samples]
    rec["processes"] = [{"samples_ns": s.tolist(), "summary": summarize(s).as_dict(), "machine": {},
                         "probe": {"conv_ns": probe_ns}} for s in ints]
    rec["stats"] = pool(ints, 1).as_dict()
    rec["parity"] = dict(PASSED_PARITY)
    return rec


PASSED_PARITY = {"passed": True, "cosine": 1.0, "max_abs_err": 0.0, "max_rel_err": 0.0, "top1_agreement": 1.0}


def process_samples(rng: np.random.Generator, median_ns: float, processes: int = 3, n: int = 200,
                    process_sd: float = 0.01, iter_sd: float = 0.05) -> list[np.ndarray]:
    """Iterations lognormal around a per-process level that itself varies between processes."""
    return [median_ns * rng.normal(1, process_sd) * rng.lognormal(0, iter_sd, n) for _ in range(processes)]


def with_relative(rec: dict, value: float, reference: str = "conv-dense", torch: str = "2.14.1",
                  reference_ms: float = 3.0) -> dict:
    """`rec` as if timed beside a pinned reference: its relative figure (CI +-0.5%)."""
    rec["relative"] = {"value": value, "ci_low": value * 0.995, "ci_high": value * 1.005, "pairs": 12,
                       "reference": {"name": reference, "torch": torch}, "reference_p50_ms": reference_ms,
                       "statistic": "median over window pairs"}
    return rec
