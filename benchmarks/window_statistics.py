"""Which statistic of a job's samples repeats between two sweeps? (chooses the leaderboard figure)

Reads two or more run folders of the same jobs (e.g. two back-to-back `bench run` sweeps) and, for
each candidate statistic recomputed from the raw samples, prints the share of jobs whose figures agree
within 3% between every pair of runs, the 90th percentile of the gap, and (for the windowed ones) the
share of windows set aside. The headline rule in `harness.windows` was chosen with this script.

    python benchmarks/window_statistics.py results/runs/A results/runs/B [...]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import store, windows  # noqa: E402
from harness.jobs import key_of  # noqa: E402

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
    for level, tol in itertools.product((0.1, 0.25, 0.5), (0.02, 0.03, 0.05, 0.10)):
        c[f"quiet p50 (level {level:.2f}, tol {tol:.0%})"] = (
            lambda ps, level=level, tol=tol: windows.quiet_p50(np.concatenate(_window_medians(ps)), level, tol))
    return c


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--limit", type=float, default=0.03)
    args = parser.parse_args()
    runs = [{key_of(r["job"]): r for r in store.load_run(f) if r["status"] == "ok"} for f in args.runs]
    keys = sorted(set.intersection(*(set(r) for r in runs)), key=str)
    samples = [{k: [np.asarray(p["samples_ns"], float) for p in run[k]["processes"]] for k in keys} for run in runs]
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
    every = [np.concatenate(_window_medians(s[k])) for s in samples for k in keys]
    aside = [1 - windows.quiet_mask(m).mean() for m in every]
    print(f"headline rule ({windows.STATISTIC}): windows set aside per job: median {np.median(aside):.0%}, "
          f"90th percentile {np.percentile(aside, 90):.0%}")


if __name__ == "__main__":
    main()
