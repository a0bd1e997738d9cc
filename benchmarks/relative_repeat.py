"""Do two sweeps repeat? Per job, the relative figures' and the milliseconds' agreement between two run folders.

For every job measured in both runs: |b/a - 1| of the relative figure (job / pinned reference) and of the
quiet-window p50, and how many jobs agree within 3%. Run two default sweeps at least 20 minutes apart,
each alone on the machine, then:

    python benchmarks/relative_repeat.py results/runs/RUN_A results/runs/RUN_B [--within 0.03]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def agreement(a: list[dict], b: list[dict], within: float) -> dict:
    from harness.store.job_key import key_label, key_of

    first = {key_of(r["job"]): r for r in a if r["status"] == "ok"}
    rows = []
    for rec in b:
        base = first.get(key_of(rec["job"]))
        if rec["status"] != "ok" or base is None or not rec.get("relative") or not base.get("relative"):
            continue
        rel = rec["relative"]["value"] / base["relative"]["value"] - 1
        ms = rec["stats"]["p50"] / base["stats"]["p50"] - 1
        ref = rec["relative"]["reference_p50_ms"] / base["relative"]["reference_p50_ms"] - 1
        rows.append((key_label(rec["job"]), rel, ms, ref, rec["relative"]["reference"]["name"]))
    rel, ms = np.abs([r[1] for r in rows]), np.abs([r[2] for r in rows])
    return {"rows": rows, "jobs": len(rows), "relative_within": int((rel <= within).sum()),
            "ms_within": int((ms <= within).sum()), "relative_median": float(np.median(rel)) if rows else None,
            "ms_median": float(np.median(ms)) if rows else None}


def main() -> None:
    from harness.store.runs import load_run

    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--within", type=float, default=0.03)
    args = parser.parse_args()
    out = agreement(*([r.as_document() for r in load_run(run)] for run in (args.a, args.b)), args.within)
    for label, rel, ms, ref, name in sorted(out["rows"], key=lambda r: -abs(r[1])):
        print(f"{label:60s} relative {rel:+6.1%}  ms {ms:+6.1%}  reference {name} {ref:+6.1%}")
    print(f"{out['jobs']} jobs: relative within {args.within:.0%} on {out['relative_within']} "
          f"(median |diff| {out['relative_median']:.1%}); milliseconds on {out['ms_within']} "
          f"(median {out['ms_median']:.1%})")


if __name__ == "__main__":
    main()
