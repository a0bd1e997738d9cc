"""`bench compare`: is the candidate slower than the baseline, key by key, and can we tell?

Method. Iterations inside one process are not independent (a whole process shifts together on a
shared host), so the unit of variation is the process: the ratio of p50s gets a hierarchical
bootstrap CI (resample processes, then iterations inside each resampled process). With one process
per side that CI ignores between-process variation, and the output says so. The test of difference
is Mann-Whitney U (scipy) on per-process medians when each side has at least MWU_MIN_PROCESSES
processes (below that it cannot reach significance), else on the pooled iterations, and then only
together with the bootstrap CI excluding 1. A key is a regression only when it is significant, slower
by more than the threshold, neither side was marked unstable, and the machine itself did not change
speed between the runs: each process records a fixed conv-stack probe before it loads the model, and
when the candidate's probe is more than MACHINE_DRIFT_LIMIT slower (or faster) than the baseline's, the
machine moved, and the difference is "noisy", never "slower". (Measured here on two default sweeps
minutes apart: job ratios and probe ratios correlate at r = 0.61; four of five would-be false
regressions had the candidate's probe 9-20% slower.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.errors import HarnessError
from harness.jobs import KEY_FIELDS
from harness.jobs import key_of as job_key
from harness.stats import median_of_medians_draws

BOOTSTRAP = 2000
MWU_MIN_PROCESSES = 4
ALPHA = 0.05
MACHINE_DRIFT_LIMIT = 0.05
PROBE = "conv_ns"


@dataclass
class KeyResult:
    key: dict[str, Any]
    baseline_p50_ms: float
    candidate_p50_ms: float
    ratio: float  # candidate / baseline p50
    ci_low: float
    ci_high: float
    ratio_p90: float
    p_value: float
    test_unit: str
    probe_ratio: float | None  # candidate / baseline machine probe: how much the machine itself moved
    verdict: str  # faster | slower | same | noisy
    regression: bool
    why: str = ""

    @property
    def label(self) -> str:
        k = self.key
        return f"{k['model']} · {k['backend']} · {k['device']} · {k['precision']} · b{k['batch']} · t{k['threads']}"


@dataclass
class Comparison:
    rows: list[KeyResult]
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)
    not_comparable: list[str] = field(default_factory=list)  # a side has no number (skipped, error)
    environment: list[str] = field(default_factory=list)
    different_machines: bool = False
    threshold: float = 0.05
    method: str = ""

    @property
    def regressions(self) -> list[KeyResult]:
        return [r for r in self.rows if r.regression]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["regression_count"] = len(self.regressions)
        return data


def key_of(rec: dict[str, Any]) -> tuple:
    return job_key(rec["job"])


def key_label(key: tuple) -> str:
    return " · ".join(str(v) for v in key)


def bootstrap_ratio(base: list[np.ndarray], cand: list[np.ndarray], seed: int = 0) -> tuple[float, float]:
    """95% CI of median-of-process-medians(cand) / (base), resampling processes then iterations."""
    ratios = median_of_medians_draws(cand, BOOTSTRAP, seed + 1) / median_of_medians_draws(base, BOOTSTRAP, seed)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def _samples(rec: dict[str, Any]) -> list[np.ndarray]:
    return [np.asarray(p["samples_ns"], dtype=np.float64) for p in rec["processes"]]


def probe_median(rec: dict[str, Any]) -> float | None:
    values = [p["probe"][PROBE] for p in rec["processes"] if PROBE in (p.get("probe") or {})]
    return float(np.median(values)) if values else None


def compare_records(base: dict[str, Any], cand: dict[str, Any], threshold: float) -> KeyResult:
    bs, cs = _samples(base), _samples(cand)
    ratio = cand["stats"]["p50"] / base["stats"]["p50"]
    lo, hi = bootstrap_ratio(bs, cs)
    if min(len(bs), len(cs)) >= MWU_MIN_PROCESSES:
        unit, a, b = "process medians", [np.median(s) for s in bs], [np.median(s) for s in cs]
    else:
        unit, a, b = "iterations", np.concatenate(bs), np.concatenate(cs)
    p_value = float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    significant = p_value < ALPHA and (lo > 1.0 or hi < 1.0)
    unstable = base["unstable"] or cand["unstable"]
    pa, pb = probe_median(base), probe_median(cand)
    probe_ratio = pb / pa if pa and pb else None
    drifted = probe_ratio is not None and abs(probe_ratio - 1) > MACHINE_DRIFT_LIMIT
    why = ""
    if significant and abs(ratio - 1) >= threshold and (unstable or drifted):
        verdict = "noisy"
        why = ("a side was marked unstable" if unstable else
               f"the machine itself ran {abs(probe_ratio - 1):.0%} {'slower' if probe_ratio > 1 else 'faster'} "
               "in the candidate run (probe)")
    elif significant and ratio >= 1 + threshold:
        verdict = "slower"
    elif significant and ratio <= 1 - threshold:
        verdict = "faster"
    elif 1 - threshold <= lo and hi <= 1 + threshold:
        verdict = "same"
    elif not significant and (hi - lo) <= 2 * threshold and 1 - threshold <= ratio <= 1 + threshold:
        verdict = "same"
    else:
        verdict = "noisy"
        why = f"95% CI {lo:.3f}-{hi:.3f} straddles the ±{threshold:.0%} threshold"
    return KeyResult(
        key=dict(zip(KEY_FIELDS, key_of(base))), baseline_p50_ms=base["stats"]["p50"] / 1e6,
        candidate_p50_ms=cand["stats"]["p50"] / 1e6, ratio=ratio, ci_low=lo, ci_high=hi,
        ratio_p90=cand["stats"]["p90"] / base["stats"]["p90"], p_value=p_value, test_unit=unit,
        probe_ratio=probe_ratio, verdict=verdict,
        regression=verdict == "slower", why=why,
    )


def environment_differences(base: list[dict], cand: list[dict]) -> tuple[list[str], bool]:
    """What differs between the two runs' hosts; True when they are different machines."""
    a, b = base[0]["host"], cand[0]["host"]
    lines, machines = [], False
    for label, get in (("CPU", lambda h: h["cpu"]["model"]), ("cores", lambda h: h["cpu"]["logical_cores"]),
                       ("host", lambda h: h.get("hostname")), ("memory GB", lambda h: h.get("memory_gb"))):
        if get(a) != get(b):
            lines.append(f"{label}: {get(a)} -> {get(b)}")
            machines = True
    for label, get in (("OS", lambda h: h.get("os")), ("Python", lambda h: h.get("python")),
                       ("commit", lambda h: (h.get("project") or {}).get("commit"))):
        if get(a) != get(b):
            lines.append(f"{label}: {get(a)} -> {get(b)}")
    libs_a, libs_b = a.get("libraries", {}), b.get("libraries", {})
    for name in sorted(set(libs_a) | set(libs_b)):
        if libs_a.get(name) != libs_b.get(name):
            lines.append(f"{name}: {libs_a.get(name, 'absent')} -> {libs_b.get(name, 'absent')}")
    return lines, machines


def compare_runs(base: list[dict[str, Any]], cand: list[dict[str, Any]], threshold: float = 0.05) -> Comparison:
    if not 0 < threshold < 1:
        raise HarnessError(f"--threshold must be a fraction between 0 and 1 (0.05 = 5%), not {threshold}")
    by_a, by_b = {key_of(r): r for r in base}, {key_of(r): r for r in cand}
    common = [k for k in by_a if k in by_b]
    if not common:
        raise HarnessError("the two runs have no job in common (same model, form, backend, device, precision, "
                           "batch, threads, boundary); nothing to compare")
    env, machines = environment_differences(base, cand)
    result = Comparison(rows=[], environment=env, different_machines=machines, threshold=threshold,
                        only_baseline=[key_label(k) for k in by_a if k not in by_b],
                        only_candidate=[key_label(k) for k in by_b if k not in by_a])
    for key in common:
        a, b = by_a[key], by_b[key]
        if a["status"] != "ok" or b["status"] != "ok":
            result.not_comparable.append(f"{key_label(key)} (baseline {a['status']}, candidate {b['status']})")
            continue
        result.rows.append(compare_records(a, b, threshold))
    processes = min(min(len(by_a[k]["processes"]), len(by_b[k]["processes"])) for k in common
                    if by_a[k]["status"] == "ok" == by_b[k]["status"]) if result.rows else 0
    result.method = (
        f"p50 ratio CI: hierarchical bootstrap ({BOOTSTRAP} draws; processes, then iterations); test: Mann-Whitney U "
        f"on {'per-process medians' if processes >= MWU_MIN_PROCESSES else 'pooled iterations (fewer than 4 processes a side), required to agree with the CI'}; "
        f"alpha {ALPHA}; regression = significant and slower by more than {threshold:.0%} with neither side unstable "
        f"and the machine probe within ±{MACHINE_DRIFT_LIMIT:.0%} between the runs"
        + ("; WARNING: one process per side, so the CI ignores between-process variation" if processes == 1 else "")
    )
    return result


def to_markdown(c: Comparison) -> str:
    lines = []
    if c.different_machines:
        lines.append("**Different machines: these numbers are not comparable as a regression test.**\n")
    if c.environment:
        lines.append("Environment changes: " + "; ".join(c.environment) + "\n")
    lines += ["| job | baseline ms | candidate ms | ratio [95% CI] | p90 ratio | p | machine | verdict |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in c.rows:
        mark = "**REGRESSION**" if r.regression else r.verdict + (f" ({r.why})" if r.why else "")
        machine = "—" if r.probe_ratio is None else f"{r.probe_ratio:.3f}"
        lines.append(f"| {r.label} | {r.baseline_p50_ms:.3f} | {r.candidate_p50_ms:.3f} | {r.ratio:.3f} "
                     f"[{r.ci_low:.3f}–{r.ci_high:.3f}] | {r.ratio_p90:.3f} | {r.p_value:.3g} | {machine} | {mark} |")
    for label, items in (("Only in baseline", c.only_baseline), ("Only in candidate", c.only_candidate),
                         ("Not comparable", c.not_comparable)):
        if items:
            lines.append(f"\n{label}: " + "; ".join(items))
    lines.append(f"\n{len(c.regressions)} regression(s) over {len(c.rows)} compared jobs. Method: {c.method}.")
    return "\n".join(lines) + "\n"
