"""How often does `bench compare` cry wolf, and how often does it catch a slowdown? (real processes)

A/A: two sweeps of the same jobs -> regressions flagged (should be 0).
Planted: the candidate's every job slowed by 10% and by 5% -> share of keys flagged.
The jobs are a test backend that sleeps (1-4 ms, like the zoo's CPU latencies), measured with the
default protocol (3 processes per job), so the statistics meet the machine's real process noise.

    python benchmarks/gate_rates.py [--keys 12]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends import registry  # noqa: E402
from harness import store  # noqa: E402
from harness.compare import compare_runs  # noqa: E402
from harness.jobs import Job  # noqa: E402
from harness.protocol import preset  # noqa: E402
from harness.runner import run_sweep  # noqa: E402

MODEL = "timm:test_byobnet"


def sweep(folder: Path, keys: int, slowdown: float) -> list[dict]:
    """One sweep in its own interpreter: measurement processes inherit the environment of the fork
    server, which is fixed when the first sweep of an interpreter starts it."""
    env = {**os.environ, "ONEBENCH_FAKE_SLOWDOWN": str(slowdown)}
    subprocess.run([sys.executable, __file__, "--sweep", str(folder), "--keys", str(keys)], env=env, check=True)
    return store.load_run(folder)


def run_one(folder: Path, keys: int) -> None:
    registry.register("fake-sleep", "tests.fake_backends:Sleeps")
    jobs = [Job(MODEL, "fake-sleep", batch=b + 1, threads=1, input_size=64) for b in range(keys)]
    run_sweep(jobs, preset("default"), folder, cache_dir=folder.parent / "cache")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=12)
    parser.add_argument("--sweep", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sweep:
        return run_one(args.sweep, args.keys)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = sweep(root / "base", args.keys, 0.0)
        for label, slowdown in (("A/A", 0.0), ("+5%", 0.05), ("+10%", 0.10)):
            cand = sweep(root / label.replace("/", "").replace("%", ""), args.keys, slowdown)
            result = compare_runs(base, cand, 0.05)
            verdicts = [r.verdict for r in result.rows]
            print(f"{label:5s}: {len(result.regressions)}/{len(result.rows)} flagged as regressions; "
                  f"verdicts {dict((v, verdicts.count(v)) for v in sorted(set(verdicts)))}; "
                  f"median ratio {sorted(r.ratio for r in result.rows)[len(result.rows) // 2]:.3f}")


if __name__ == "__main__":
    main()
