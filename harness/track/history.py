"""`bench history`: each job key's figure over every run in the index, with change points.

The figure is the relative one (the job's time over its pinned reference's, `harness.measure.relative`)
where the runs have it, one series per reference identity: on a shared host the milliseconds move with
the machine's moods within the hour, the relative figure far less. `figure="ms"` shows milliseconds;
keys never timed beside a reference (GPU, phone, older runs) always do.

Steps are found by ruptures' PELT (Killick et al. 2012) on log p50, l2 cost, with the penalty
PENALTY * sigma^2 * log(n), where sigma is the series' noise estimated robustly from successive
differences (MAD / 0.6745 / sqrt 2). PENALTY = 6 was calibrated by simulation (500 noise-only and
300 one-step 30-point series, 1% and 2% noise): a false step in 0.2-0.4% of noise-only series (17%
with the textbook BIC's 2, 3% with 4), and a step of 5 noise SDs found at its exact run 97-98% of the
time. A segment must last MIN_SIZE (3) runs: a one- or two-night
blip is noise to a nightly gate, not a step. A step must also move the series' median by MIN_STEP (2%):
over six default sweeps of one morning here, PELT split two of 36 relative series after a one-sweep blip
into "steps" of -0.3% and -1.0%, which nobody should act on. Each step reports its size and first run
(and commit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.store import runs as store
from harness.store.job_key import DEFAULTS, KEY_FIELDS, key_label

PENALTY = 6.0
MIN_STEP = 0.02  # a change point that moves the median by less is not reported
MIN_SIGMA = 0.005  # floor for the noise estimate (0.5%): a perfectly flat series would make any wiggle a step


@dataclass
class Point:
    run_id: str
    created: str
    commit: str | None
    value: float  # in the series' unit
    ci_low: float | None
    ci_high: float | None
    unstable: bool


@dataclass
class Step:
    index: int  # first point after the step
    run_id: str
    commit: str | None
    size: float  # median after / median before - 1


@dataclass
class Series:
    key: dict[str, Any]
    points: list[Point]
    steps: list[Step] = field(default_factory=list)
    preset: str | None = None  # quick and default runs of one key are separate series: they measure differently
    unit: str = "ms"  # "x" for the gate's lockstep ratio against the pinned environment, "rel" relative figures
    reference: str | None = None  # the pinned reference of a relative series
    counter: str | None = None  # a counted series' valgrind and simulated CPU (counts compare only under one)

    @property
    def label(self) -> str:
        return (key_label(self.key) + (f" · {self.preset} preset" if self.preset else "")
                + (f" · relative to {self.reference}" if self.reference else "")
                + (f" · counted by {self.counter}" if self.counter else ""))


def change_points(values: list[float], min_size: int = 3, min_sigma: float = MIN_SIGMA) -> list[int]:
    """Indices where a new segment starts (PELT, l2 cost on log values; see the module docstring)."""
    import ruptures

    if len(values) < 2 * min_size:
        return []
    signal = np.log(np.asarray(values, dtype=np.float64))
    sigma = max(np.median(np.abs(np.diff(signal))) / 0.6745 / math.sqrt(2), min_sigma)
    penalty = PENALTY * sigma**2 * math.log(len(signal))
    ends = ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(signal).predict(pen=penalty)
    return refine(signal, [e for e in ends if e < len(signal)], min_size)


def refine(signal: np.ndarray, starts: list[int], min_size: int) -> list[int]:
    """Move each step to the split that best separates its two neighbouring segments, within min_size - 1
    points of where PELT put it. PELT cannot end a segment fewer than `min_size` points from the end, so a
    step two runs before the newest was placed one run early, blaming the commit before the one that
    changed the speed."""
    def cost(part: np.ndarray) -> float:
        return float(((part - part.mean()) ** 2).sum()) if part.size else 0.0

    bounds = [0, *starts, len(signal)]
    out = []
    for k, start in enumerate(starts):
        lo, hi = bounds[k], bounds[k + 2]
        window = range(max(lo + 1, start - min_size + 1), min(hi - 1, start + min_size - 1) + 1)
        out.append(min(window, key=lambda i: (cost(signal[lo:i]) + cost(signal[i:hi]), abs(i - start))))
    return out


FIGURES = ("relative", "ms", "counted")
# a counted series repeats to ~0.01% (docs/counted.md): its noise floor and the smallest step worth a line
COUNTED_MIN_SIGMA, COUNTED_MIN_STEP = 0.0005, 0.005


def load_series(db: Path, figure: str = "relative", **where: Any) -> list[Series]:
    """Every key's series (per preset; relative ones per reference identity), oldest run first."""
    if figure not in FIGURES:
        raise HarnessError(f"unknown figure {figure!r}; use relative, ms or counted")
    rows = [r for r in store.query(db, **where) if r["status"] == "ok" and r["p50_ns"]]
    if figure == "counted":
        return counted_series(rows)
    if not rows:
        raise HarnessError("no measured jobs in the index match; `bench reindex` if runs are missing")
    grouped: dict[tuple, list[dict]] = {}
    for r in rows:
        grouped.setdefault((*(r[k] for k in KEY_FIELDS), r["preset"]), []).append(r)
    series = []
    for key, items in grouped.items():
        items = sorted(items, key=lambda r: r["created"])
        relative = [r for r in items if r["relative"]]
        if figure == "relative" and relative:
            by_reference: dict[str, list[dict]] = {}
            for r in relative:
                by_reference.setdefault(r["reference"], []).append(r)
            for reference, refs in by_reference.items():
                points = [Point(r["run_id"], r["created"], r["commit_sha"], r["relative"], r["relative_ci_low"],
                                r["relative_ci_high"], bool(r["unstable"])) for r in refs]
                series.append(with_steps(Series(dict(zip(KEY_FIELDS, key)), points, preset=key[-1], unit="rel",
                                                reference=reference)))
            continue
        points = [Point(r["run_id"], r["created"], r["commit_sha"], r["p50_ns"] / 1e6,
                        r["ci_low_ns"] / 1e6 if r["ci_low_ns"] else None, r["ci_high_ns"] / 1e6 if r["ci_high_ns"] else None,
                        bool(r["unstable"])) for r in items]
        series.append(with_steps(Series(dict(zip(KEY_FIELDS, key)), points, preset=key[-1])))
    if all(len(s.points) < 2 for s in series):
        raise HarnessError("each matching job has only one run in the index; history needs at least two runs")
    return sorted(series, key=lambda s: s.label)


def counted_series(rows: list[dict]) -> list[Series]:
    """Each key's instructions per inference over the counted runs (per counter: a count is comparable only
    under one valgrind and simulated CPU), in millions."""
    rows = [r for r in rows if r["instructions"]]
    if not rows:
        raise HarnessError("no counted jobs in the index match; count a sweep with `bench run --counted`")
    grouped: dict[tuple, list[dict]] = {}
    for r in rows:
        grouped.setdefault((*(r[k] for k in KEY_FIELDS), r["counted_by"]), []).append(r)
    series = [with_steps(Series(dict(zip(KEY_FIELDS, key)), [
        Point(r["run_id"], r["created"], r["commit_sha"], r["instructions"] / 1e6, None, None, False)
        for r in sorted(items, key=lambda r: r["created"])], unit="M instr", counter=key[-1]),
        min_sigma=COUNTED_MIN_SIGMA, min_step=COUNTED_MIN_STEP) for key, items in grouped.items()]
    if all(len(s.points) < 2 for s in series):
        raise HarnessError("each matching job was counted in one run only; history needs at least two counted runs")
    return sorted(series, key=lambda s: s.label)


def with_steps(s: Series, min_sigma: float = MIN_SIGMA, min_step: float = MIN_STEP) -> Series:
    values = [p.value for p in s.points]
    for i in change_points(values, min_sigma=min_sigma):
        before, after = np.median(values[:i]), np.median(values[i:])
        if abs(after / before - 1) >= min_step:
            s.steps.append(Step(i, s.points[i].run_id, s.points[i].commit, float(after / before - 1)))
    return s


GATE_FILE = "compare.json"  # what each night's gate decided (`bench nightly` writes it into its run folder)


def gate_series(root: Path) -> list[Series]:
    """The gate's own history: per key, each lockstep night's ratio against the pinned environment with its
    CI. On a shared runner this is the figure that holds from night to night (absolute milliseconds
    drift with the host), so steps are detected on it."""
    import json

    grouped: dict[tuple, list[Point]] = {}
    for path in sorted(root.glob(f"runs/nightly-*/{GATE_FILE}")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a night that died mid-write: its run folder says so
        if "lockstep" not in data.get("method", ""):
            continue
        for row in data.get("rows", []):
            key = tuple({**DEFAULTS, **row["key"]}[f] for f in KEY_FIELDS)
            grouped.setdefault(key, []).append(Point(path.parent.name, data.get("created", ""), data.get("commit"),
                                                     row["ratio"], row["ci_low"], row["ci_high"], row["verdict"] == "noisy"))
    if not grouped:
        raise HarnessError(f"no lockstep nights under {root / 'runs'} (bench nightly --baseline-constraints writes them)")
    return sorted((with_steps(Series(dict(zip(KEY_FIELDS, key)), sorted(points, key=lambda p: p.created), unit="x"))
                   for key, points in grouped.items()), key=lambda s: s.label)


UNITS = {"ms": "ms", "x": "x", "rel": "x ref", "M instr": "M instr"}
AXIS_LABELS = {"ms": "p50 ms", "x": "ratio to the pinned baseline", "rel": "time / pinned reference's",
               "M instr": "M instructions / inference (counted, simulated CPU)"}


def lines(s: Series) -> list[str]:
    """`bench history`'s text: the series, then one line per run (when, which run and commit, the figure),
    each step under the run it starts at."""
    out = [f"{s.label}:"]
    steps = {st.index: st for st in s.steps}
    digits = 2 if s.unit == "ms" else 3
    for i, p in enumerate(s.points):
        if i in steps:
            out.append(f"  ---- step {steps[i].size:+.1%} here (commit {(steps[i].commit or '?')[:10]}) ----")
        ci = "" if p.ci_low is None else f" [{p.ci_low:.{digits}f}–{p.ci_high:.{digits}f}]"
        when = p.created[:16].replace("T", " ") if p.created else "?"
        mark = ("  undecided" if s.unit == "x" else "  unstable") if p.unstable else ""
        out.append(f"  {when}  {p.value:8.3f} {UNITS[s.unit]}{ci}{mark}  commit {(p.commit or '?')[:10]}  run {p.run_id}")
    return out


def run_tick(p: Point) -> str:
    """A run on the x axis: its date and time and short commit, so runs of one commit are told apart."""
    when = p.created[5:16].replace("T", " ") if p.created else p.run_id
    return f"{when} · {p.commit[:7]}" if p.commit else when


def plot(series: list[Series], path: Path) -> Path:
    """Each series' figure with CI bars per key over runs (x: each run's date, time and commit), steps as dashed lines;
    PNG or SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".png", ".svg"):
        raise HarnessError(f"--plot must end in .png or .svg, not {path.name!r}")
    shown = [s for s in series if len(s.points) >= 2]
    if not shown:
        raise HarnessError("nothing to plot yet: every series has a single run (history needs at least two)")
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.6 * len(shown)), squeeze=False)
    for ax, s in zip(axes[:, 0], shown):
        x = np.arange(len(s.points))
        y = np.array([p.value for p in s.points])
        lo = np.array([p.ci_low if p.ci_low is not None else p.value for p in s.points])
        hi = np.array([p.ci_high if p.ci_high is not None else p.value for p in s.points])
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o-", ms=4, capsize=2, lw=1)
        unstable = [i for i, p in enumerate(s.points) if p.unstable]
        ax.plot(x[unstable], y[unstable], "x", color="tab:red", label="unstable" if unstable else None)
        for st in s.steps:
            ax.axvline(st.index - 0.5, ls="--", color="tab:orange")
            ax.annotate(f"{st.size:+.1%}", (st.index - 0.5, y.max()), color="tab:orange", fontsize=8)
        ax.set_xticks(x, [run_tick(p) for p in s.points], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel(AXIS_LABELS[s.unit])
        if s.unit == "x":
            ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_title(s.label, fontsize=9)
        if unstable:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
