"""Where the time goes, as docs/profile.md shows it: `bench profile` of each model on each CPU backend, the op
kinds' time shares side by side, the MobileOne training form against the fused one by op kind (what the
branches cost), fp32 against int8 (which ops stayed float), and each profile's total beside its plain p50.

Each profile runs in its own process as `bench profile` runs it (the same planner, cache and records,
saved in `--out`); run it alone on the machine.

    python benchmarks/profile_table.py --out /tmp/profiles > profiles.md
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.profile import runner  # noqa: E402
from harness.publish.profile import compare_view  # noqa: E402
from harness.publish.tables import markdown  # noqa: E402
from harness.store import profile_records  # noqa: E402
from harness.store.runs import default_cache_dir  # noqa: E402

MODELS = ["mobileone_s0", "mobilenetv2_100", "efficientnet_b0"]
BACKENDS = ["torch", "torch-compile", "onnxruntime", "openvino"]


def profiled(model: str, backend: str, out: Path, iterations: int, **change: str) -> dict:
    """One profile, as `bench profile -m MODEL -b BACKEND [--form F] [-p P]` makes it; saved in `out`."""
    request = runner.plan(model, backend, change.get("precision"), 1, 1, "cpu", change.get("form", "fused"), None, None,
                          False, None, None, None, iterations)
    rec = runner.profile(request, default_cache_dir())
    profile_records.save(out, rec)
    print(f"profiled {model} {backend} {change or ''}: {rec['totals']['profiled_wall_ms']:.2f} ms "
          f"(plain {rec['totals']['plain_p50_ms']:.2f})", file=sys.stderr)
    return rec


def shares_table(model: str, recs: dict[str, dict]) -> str:
    """Op kinds (rows) × backends (columns): each kind's share of the profiled ops' time."""
    kinds: collections.Counter[str] = collections.Counter()
    for rec in recs.values():
        for k in rec["kinds"]:
            kinds[k["kind"]] += k["share"]
    header = [f"{model}: op kind", *recs]
    rows = [[kind, *(next((f"{k['share']:.0%}" for k in rec["kinds"] if k["kind"] == kind), "–") for rec in recs.values())]
            for kind, _ in kinds.most_common()]
    rows.append(["profiled ops (ms)", *(f"{rec['totals']['ops_ms']:.2f}" for rec in recs.values())])
    rows.append(["plain p50 (ms)", *(f"{rec['totals']['plain_p50_ms']:.2f}" for rec in recs.values())])
    rows.append(["profiled / plain", *(f"{rec['totals']['overhead']:+.0%}" for rec in recs.values())])
    return markdown(header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/onebench-profiles"))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--backend", action="append", default=None)
    args = parser.parse_args()
    models, backends = args.model or MODELS, args.backend or BACKENDS
    args.out.mkdir(parents=True, exist_ok=True)
    for model in models:
        recs = {b: profiled(model, b, args.out, args.iterations) for b in backends}
        print(f"### {model}\n\n{shares_table(model, recs)}")
        if model.startswith("mobileone"):  # the paper's comparison: the branches against the fused conv
            for backend in backends:
                trained = profiled(model, backend, args.out, args.iterations, form="train")
                header, rows = compare_view(recs[backend], trained, "op", 12, None)
                print(f"#### {model} on {backend}: A = fused, B = training form (branches)\n\n{markdown(header, rows)}")
            for backend in ("onnxruntime", "openvino"):
                if backend in backends:
                    quantized = profiled(model, backend, args.out, args.iterations, precision="int8")
                    header, rows = compare_view(recs[backend], quantized, "op", 12, None)
                    floats = [f"{k['kind']} {k['count'] - k['int8']}/{k['count']}" for k in quantized["kinds"]
                              if k["count"] - k["int8"]]
                    print(f"#### {model} on {backend}: A = fp32, B = int8 (random calibration)\n\n{markdown(header, rows)}\n"
                          f"ops that stayed float in the int8 profile: {', '.join(floats)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
