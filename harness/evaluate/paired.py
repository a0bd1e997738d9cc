"""The accuracy an artifact costs, from per-image outcomes paired with PyTorch fp32 on the same images.

Two top-1 rates measured on the same images are not independent: most images are right (or wrong)
under both. Their difference is judged on the discordant pairs alone (images right under one and wrong
under the other), so its interval is far tighter than two independent intervals would give: a paired
bootstrap over images (resampling the 2x2 table of outcomes, which is the same as resampling images)
for the 95% CI, and McNemar's exact test for whether the difference is real.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RESAMPLES = 10_000
SEED = 0


def paired_delta(measured: np.ndarray, reference: np.ndarray, changed: int, confidence: float = 0.95) -> dict[str, Any]:
    """Δtop-1 (measured minus reference, as a fraction) with its CI from boolean per-image correctness."""
    from scipy.stats import binomtest

    measured, reference = np.asarray(measured, dtype=bool), np.asarray(reference, dtype=bool)
    n = len(measured)
    cells = np.array([(measured & reference).sum(), (reference & ~measured).sum(), (measured & ~reference).sum(),
                      (~measured & ~reference).sum()])
    lost, gained = int(cells[1]), int(cells[2])
    draws = np.random.default_rng(SEED).multinomial(n, cells / n, size=RESAMPLES)
    deltas = (draws[:, 2] - draws[:, 1]) / n
    tail = (1 - confidence) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    p = binomtest(min(lost, gained), lost + gained, 0.5).pvalue if lost + gained else 1.0
    return {"delta_top1": (gained - lost) / n, "ci_low": float(low), "ci_high": float(high), "confidence": confidence,
            "method": f"paired bootstrap over images ({RESAMPLES} resamples)", "mcnemar_p": float(p),
            "significant": bool(low > 0 or high < 0), "fp32_right_only": lost, "measured_right_only": gained,
            "changed_predictions": int(changed), "images": n}


def describe(paired: dict[str, Any]) -> str:
    """Δtop-1 with its CI in points, as every report prints it."""
    return (f"Δ top-1 {paired['delta_top1'] * 100:+.2f} pt [95% CI {paired['ci_low'] * 100:+.2f}, "
            f"{paired['ci_high'] * 100:+.2f}]")
