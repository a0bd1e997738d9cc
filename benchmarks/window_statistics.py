"""Which statistic of a job's samples repeats between two sweeps? (chooses the leaderboard figure)

Reads two or more run folders of the same jobs (e.g. two back-to-back `bench run` sweeps) and, for
each candidate statistic recomputed from the raw samples, prints the share of jobs whose figures agree
within 3% between every pair of runs, the 90th percentile of the gap, and the share of windows the
harness's rule set aside. With one run folder and `--split`, each job's processes are split in time
(the first half of its rounds against the second), which emulates two sweeps of half the processes.
The headline rule in `harness.measure.windows` was chosen with this script.

    python benchmarks/window_statistics.py results/runs/A results/runs/B [...]
    python benchmarks/window_statistics.py --split results/runs/A
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.measure import windows  # noqa: E402
from harness.store import runs as store

Stat = Callable[[list[np.ndarray]], float]


def _window_medians(procs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.array([w["p50"] for w in windows.summaries(p)]) for p in procs]


def candidates() -> dict[str, Stat]:
    c: dict[str, Stat] = {
        "median of process medians": lambda ps: float(np.median([np.median(p) for p in ps])),
        "p50 of all iterations": lambda ps: float(np.median(np.concatenate(ps))),
        "min of process medians": lambda ps: float(min(np.median(p) for p in ps)),
    }
    for q in (0.1, 0.25, 0.5):
        c[f"q{q:.2f} of window medians"] = lambda ps, q=q: float(np.quantile(np.concatenate(_window_medians(ps)), q))
    for level, tol in itertools.product((0.05, 0.1, 0.25, 0.5), (0.02, 0.03, 0.05, 0.10)):
        c[f"quiet p50 (level {level:.2f}, tol {tol:.0%})"] = lambda ps, level=level, tol=tol: _quiet(ps, level, tol)
    c["second-fastest process level (p25 of its windows), tol 3%"] = _second_fastest
    c[f"harness: {windows.STATISTIC}"] = lambda ps: windows.quiet_p50(_window_medians(ps))
    return c


def _quiet(procs: list[np.ndarray], level: float, tol: float) -> float:
    """Median of the window medians within `tol` of the `level` quantile of all of them."""
    every = np.concatenate(_window_medians(procs))
    return float(np.median(every[every <= np.quantile(every, level) * (1 + tol)]))


def _second_fastest(procs: list[np.ndarray]) -> float:
    meds = _window_medians(procs)
    levels = sorted(float(np.quantile(m, 0.25)) for m in meds)
    cut = (levels[1] if len(levels) > 1 else levels[0]) * 1.03
    return float(np.median(np.concatenate([m[m <= cut] for m in meds])))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--limit", type=float, default=0.03)
    parser.add_argument("--split", action="store_true", help="one run: its processes' first half against the second")
    args = parser.parse_args()
    runs = [{r.key: r.as_document() for r in store.load_run(f) if r.ok} for f in args.runs]
    keys = sorted(set.intersection(*(set(r) for r in runs)), key=str)
    samples = [{k: [np.asarray(p["samples_ns"], float) for p in run[k]["processes"]] for k in keys} for run in runs]
    if args.split:
        whole = samples[0]
        samples = [{k: v[:len(v) // 2] for k, v in whole.items()}, {k: v[len(v) // 2:2 * (len(v) // 2)] for k, v in whole.items()}]
    print(f"{len(keys)} jobs in common over {len(runs)} runs; agreement limit {args.limit:.0%}")
    rows = []
    for name, stat in candidates().items():
        gaps = []
        for a, b in itertools.combinations(samples, 2):
            for k in keys:
                x, y = stat(a[k]), stat(b[k])
                gaps.append(abs(y / x - 1))
        gaps_arr = np.array(gaps)
        rows.append((float(np.mean(gaps_arr <= args.limit)), name, float(np.percentile(gaps_arr, 90)), float(gaps_arr.max())))
    for share, name, p90, worst in sorted(rows, reverse=True):
        print(f"{share:6.1%} within {args.limit:.0%}   p90 gap {p90:6.2%}   worst {worst:6.1%}   {name}")
    every = [windows.quiet_masks(_window_medians(s[k])) for s in samples for k in keys]
    aside = [1 - np.concatenate(m).mean() for m in every]
    print(f"headline rule ({windows.STATISTIC}): windows set aside per job: median {np.median(aside):.0%}, "
          f"90th percentile {np.percentile(aside, 90):.0%}")


if __name__ == "__main__":
    main()
