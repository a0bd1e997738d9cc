"""Does the lockstep gate see 5% and stay quiet on A/A? (real models, real runtimes, this machine)

Runs `bench compare --interleave` three times over the same keys: A/A (both sides identical), and a
candidate made 10% and 5% slower by `benchmarks/slowdown_plugin.py`, loaded on the candidate side only
through `--candidate-env ONEBENCH_PLUGINS=...`. Prints per key the ratio, its CI, the floor and the
verdict, and per condition how many keys were flagged as regressions.

    python benchmarks/lockstep_gate.py [-m mobileone_s0 -m ...] [-b onnxruntime -b openvino] [--pairs 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["mobileone_s0", "mobilenetv2_100", "efficientnet_b0"]
BACKENDS = ["onnxruntime", "openvino"]


def lockstep(models: list[str], backends: list[str], pairs: int, slowdown: float | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "compare.json"
        cmd = [sys.executable, "-m", "harness.cli", "compare", "--interleave", "--pairs", str(pairs), "--json", str(report),
               *[a for m in models for a in ("-m", m)], *[a for b in backends for a in ("-b", b)]]
        if slowdown is not None:
            cmd += ["--candidate-env", "ONEBENCH_PLUGINS=benchmarks.slowdown_plugin",
                    "--candidate-env", f"ONEBENCH_SLOWDOWN={slowdown}"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            sys.exit(f"bench compare failed: {done.stderr.strip()[-500:]}")
        return json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", "--model", action="append")
    parser.add_argument("-b", "--backend", action="append")
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    models, backends = args.model or MODELS, args.backend or BACKENDS
    for label, slowdown in (("A/A", None), ("+10%", 0.10), ("+5%", 0.05)):
        result = lockstep(models, backends, args.pairs, slowdown)
        for row in result["rows"]:
            k = row["key"]
            print(f"{label:5s} {k['model']:16s} {k['backend']:12s} ratio {row['ratio']:.3f} "
                  f"[{row['ci_low']:.3f}-{row['ci_high']:.3f}] floor ±{row['floor']:.1%} {row['verdict']}")
        print(f"{label:5s}: {result['regression_count']}/{len(result['rows'])} keys flagged as regressions"
              + (f"; not comparable: {result['not_comparable']}" if result["not_comparable"] else ""))


if __name__ == "__main__":
    main()
