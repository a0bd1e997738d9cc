"""Does the lockstep gate see a small slowdown and stay quiet on A/A? (real models, real runtimes, this machine)

Runs `bench ab` once per condition over the same keys: A/A (both sides identical), and a
candidate made N% slower by `benchmarks/slowdown_plugin.py`, loaded on the candidate side only through
`--candidate env.ONEBENCH_PLUGINS=...`. Prints per key the ratio, its CI, the floor and the verdict, and per
condition how many keys were flagged, how many stayed undecided, and how long it took.

    python benchmarks/lockstep_gate.py [-m mobileone_s0 -m ...] [-b onnxruntime -b openvino] [--pairs 20]
        [--threshold 0.02] [--condition A/A=0 --condition +3%=0.03] [--baseline-python PY] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["mobileone_s0", "mobilenetv2_100", "efficientnet_b0"]
BACKENDS = ["onnxruntime", "openvino"]


def lockstep(models: list[str], backends: list[str], pairs: int, slowdown: float, threshold: float,
             baseline_python: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "compare.json"
        cmd = [sys.executable, "-m", "harness", "ab", "--pairs", str(pairs), "--format", "json", "--output", str(report),
               "--threshold", str(threshold),
               *[a for m in models for a in ("-m", m)], *[a for b in backends for a in ("-b", b)]]
        if baseline_python:
            cmd += ["--baseline", f"python={baseline_python}"]
        if slowdown:
            cmd += ["--candidate", "env.ONEBENCH_PLUGINS=benchmarks.slowdown_plugin",
                    "--candidate", f"env.ONEBENCH_SLOWDOWN={slowdown}"]
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode not in (0, 1, 5):
            sys.exit(f"bench ab failed (exit {done.returncode}): {done.stdout.strip()[-800:]} {done.stderr.strip()[-500:]}")
        return {**json.loads(report.read_text()), "seconds": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", "--model", action="append")
    parser.add_argument("-b", "--backend", action="append")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--condition", action="append", help="LABEL=SLOWDOWN, e.g. A/A=0 or +3%%=0.03")
    parser.add_argument("--baseline-python", help="The baseline side's interpreter (a pinned environment).")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    models, backends = args.model or MODELS, args.backend or BACKENDS
    conditions = [(c.split("=")[0], float(c.split("=")[1])) for c in args.condition or ["A/A=0", "+10%=0.10", "+5%=0.05"]]
    for attempt in range(args.repeat):
        for label, slowdown in conditions:
            result = lockstep(models, backends, args.pairs, slowdown, args.threshold, args.baseline_python)
            for row in result["rows"]:
                k = row["key"]
                print(f"{label:5s} {k['model']:16s} {k['backend']:12s} ratio {row['ratio']:.3f} "
                      f"[{row['ci_low']:.3f}-{row['ci_high']:.3f}] floor ±{row['floor']:.1%} {row['verdict']}")
            undecided = sum(row["verdict"] == "noisy" for row in result["rows"])
            print(f"{label:5s} (run {attempt + 1}): {result['regression_count']}/{len(result['rows'])} flagged, "
                  f"{undecided} undecided, {result['seconds']:.0f} s"
                  + (f"; cannot judge: {result['cannot_judge']}" if result["cannot_judge"] else ""), flush=True)


if __name__ == "__main__":
    main()
