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
# int8 is also judged on top-1 agreement over its parity inputs (several, `worker.PARITY_INT8_INPUTS`): a
# quantized model that collapsed (predictions changed, chance accuracy) fails parity instead of being ranked.
# Only inputs where fp32's top-1 is decisive count: its softmax probability at least DECISIVE. A random-weight
# model's logits nearly tie (softmax near uniform), and int8's rounding flips such ties without anything
# being wrong (measured: EfficientNet-B0, random weights, cosine 0.99995, top-1 agreement 0%).
MIN_TOP1_AGREEMENT = {"int8": 0.9}
DECISIVE = 0.5


@dataclass(frozen=True)
class Parity:
    max_abs_err: float | None  # None when an output or the reference is not finite
    max_rel_err: float | None  # max abs error / max |reference|
    cosine: float | None  # worst per-sample cosine similarity
    top1_agreement: float
    passed: bool
    tolerance: dict[str, float]
    non_finite: int = 0  # NaN/inf values in the output and the reference: data, never a crash
    decisive_inputs: int | None = None  # int8: inputs whose fp32 top-1 is decisive (`DECISIVE`)
    decisive_agreement: float | None = None  # int8: top-1 agreement on those (the criterion)

    def as_dict(self) -> dict:
        return asdict(self)


def compare(output: np.ndarray, reference: np.ndarray, precision: str) -> Parity:
    out = np.asarray(output, dtype=np.float64).reshape(reference.shape[0], -1)
    ref = np.asarray(reference, dtype=np.float64).reshape(reference.shape[0], -1)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
    tol = {"min_cosine": MIN_COSINE.get(precision, 0.99), "max_rel_err": MAX_REL_ERR.get(precision, 0.1)}
    if precision in MIN_TOP1_AGREEMENT:
        tol["min_top1_agreement"] = MIN_TOP1_AGREEMENT[precision]
    bad = int((~np.isfinite(out)).sum() + (~np.isfinite(ref)).sum())
    if bad:  # NaN weights or a broken kernel: a failed check with the count, not a NaN in the record
        return Parity(None, None, None, float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1))), False, tol, bad)
    err = np.abs(out - ref)
    scale = float(np.abs(ref).max()) or 1.0
    out_norm, ref_norm = np.linalg.norm(out, axis=1), np.linalg.norm(ref, axis=1)
    norms = out_norm * ref_norm
    # a zero output against a non-zero reference is as unlike as it gets (0), two zero vectors alike (1)
    cosine = float(np.min(np.where(norms > 0, (out * ref).sum(axis=1) / np.where(norms > 0, norms, 1),
                                   np.where((out_norm == 0) & (ref_norm == 0), 1.0, 0.0))))
    same = out.argmax(axis=1) == ref.argmax(axis=1)
    top1 = float(np.mean(same))
    max_rel = float(err.max()) / scale
    passed = bool(cosine >= tol["min_cosine"] and max_rel <= tol["max_rel_err"])
    decisive = agreement = None
    if "min_top1_agreement" in tol:
        shifted = np.exp(ref - ref.max(axis=1, keepdims=True))
        chosen = shifted.max(axis=1) / shifted.sum(axis=1) >= DECISIVE
        decisive = int(chosen.sum())
        agreement = float(np.mean(same[chosen])) if decisive else None
        passed = passed and (agreement is None or agreement >= tol["min_top1_agreement"])
    return Parity(float(err.max()), max_rel, cosine, top1, passed, tol, 0, decisive, agreement)


def describe(parity: dict) -> str:
    """The numbers of a parity check in one phrase (a record's parity dict, old records included)."""
    if parity.get("non_finite"):
        return f"{parity['non_finite']} non-finite values (NaN/inf) in the output or the reference"
    cosine = parity.get("cosine")
    text = (f"cosine {cosine:.6f}" if isinstance(cosine, (int, float)) else "no cosine") + \
        f", max rel err {parity.get('max_rel_err') or 0:.2e}"
    if parity.get("decisive_agreement") is not None:
        text += f", top-1 agreement {parity['decisive_agreement']:.0%} on {parity['decisive_inputs']} decisive inputs"
    elif parity.get("top1_agreement") is not None:
        text += f", top-1 agreement {parity['top1_agreement']:.0%}"
    return text
