"""Render the leaderboard's accuracy-vs-latency plot and the history plot from synthetic records, to look
at them (docs/plots/): the figures are made up (latencies of the order this 2-vCPU host measures), the
drawing is the product's.

    python benchmarks/render_example_plots.py [OUT_DIR=docs/plots] [PREFIX=example]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.publish.leaderboard import build  # noqa: E402
from harness.publish.plots import draw_all  # noqa: E402
from harness.track.history import load_series, plot  # noqa: E402
from tests.synthetic import process_samples, record  # noqa: E402

MS = {"mobileone_s0": 9.1, "mobileone_s1": 17.8, "mobileone_s2": 26.5, "mobileone_s3": 35.9, "mobileone_s4": 61.0,
      "mobilenetv2_100": 8.4, "efficientnet_b0": 14.2, "mobileformer_508m": 31.5}
HOST = "AMD EPYC 7B13 (Linux-6.8.0-1013-gcp-x86_64-with-glibc2.39)"


def records(rng: np.random.Generator) -> list[dict]:
    out = []
    for model, ms in MS.items():
        noisy = model == "mobileformer_508m"  # one job whose processes disagree: wide CI, unstable
        samples = process_samples(rng, ms * 1e6, process_sd=0.3 if noisy else 0.01)
        rec = record(samples, model=model, backend="onnxruntime", unstable=noisy, run_id="example")
        rec["host"]["cpu"]["model"] = HOST.split(" (")[0]
        rec["host"]["os"] = HOST.split(" (")[1].rstrip(")")
        rec["model_info"]["params"] = 1
        out.append(rec)
    return out


def main(out: Path = ROOT / "docs" / "plots", prefix: str = "example") -> None:
    rng = np.random.default_rng(0)
    columns, rows = build(records(rng))
    for column, files in draw_all(columns, rows, out / f"{prefix}-leaderboard", HOST.split(" (")[0]).items():
        print(column, "->", files[0])
    # history: six runs of one commit, then a 12% step at the next commit
    index = out / f"{prefix}-history.sqlite"
    index.unlink(missing_ok=True)
    from harness.store.runs import index_record

    for i in range(8):
        commit = "3b9280e1" if i < 6 else "060848c2"
        rec = record(process_samples(rng, 9.1e6 * (1.12 if i >= 6 else 1.0)), model="mobileone_s0",
                     backend="onnxruntime", run_id=f"2026112{i}-0300-abcd{i}", commit=commit,
                     created=f"2026-11-{18 + i:02d}T03:00:00+00:00")
        index_record(index, rec, out / f"{i}.json")
    print("history ->", plot(load_series(index), out / f"{prefix}-history.png"))
    index.unlink()


if __name__ == "__main__":
    main(*(Path(a) if i == 0 else a for i, a in enumerate(sys.argv[1:])))
