"""Numerical parity of a backend's outputs with the PyTorch fp32 reference of the same weights.

A fast but wrong result is marked in every table, never ranked silently. Tolerances depend on the
precision the backend ran at; cosine similarity is the pass criterion (scale-free, so random-weight
models and trained ones are judged alike), max abs error and top-1 agreement are reported beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_COSINE = {"fp32": 0.99999, "bf16": 0.99, "fp16": 0.995, "int8": 0.98}
MAX_REL_ERR = {"fp32": 1e-3, "bf16": 0.1, "fp16": 0.05, "int8": 0.2}


@dataclass(frozen=True)
class Parity:
    max_abs_err: float
    max_rel_err: float  # max abs error / max |reference|
    cosine: float  # worst per-sample cosine similarity
    top1_agreement: float
    passed: bool
    tolerance: dict[str, float]

    def as_dict(self) -> dict:
        return asdict(self)


def compare(output: np.ndarray, reference: np.ndarray, precision: str) -> Parity:
    out = np.asarray(output, dtype=np.float64).reshape(reference.shape[0], -1)
    ref = np.asarray(reference, dtype=np.float64).reshape(reference.shape[0], -1)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
    err = np.abs(out - ref)
    scale = float(np.abs(ref).max()) or 1.0
    norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
    cosine = float(np.min(np.where(norms > 0, (out * ref).sum(axis=1) / np.where(norms > 0, norms, 1), 1.0)))
    top1 = float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1)))
    tol = {"min_cosine": MIN_COSINE.get(precision, 0.99), "max_rel_err": MAX_REL_ERR.get(precision, 0.1)}
    max_rel = float(err.max()) / scale
    passed = bool(np.isfinite(out).all() and cosine >= tol["min_cosine"] and max_rel <= tol["max_rel_err"])
    return Parity(float(err.max()), max_rel, cosine, top1, passed, tol)
