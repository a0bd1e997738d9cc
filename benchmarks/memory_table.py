"""The seed's claim, measured: does a branch-free network hold less memory than a multi-branch one?

MobileOne's training form (the parallel conv/BN branches) against its fused form, and the MobileOne paper's
block ablation (plain, skip connections, squeeze-excite), on every CPU backend: the memory each deployment
holds after opening and one inference, and peaks at while timed, above the measuring process's baseline
(`harness.host.memory`), beside the artifact's size and the latency. One `bench run` and one
`bench ablation blocks`, quick preset, no pinned reference (its session would sit in the same process):

    python benchmarks/memory_table.py --out /tmp/memory-table     # ~10 min cold on 2 vCPUs

prints the table as Markdown (docs/memory.md holds a dated one).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.publish import tables  # noqa: E402

MODELS = ["mobileone_s0", "mobileone_s1"]
BACKENDS = ["torch", "onnxruntime", "openvino"]


def bench(*args: str, cwd: Path) -> None:
    print("$ bench " + shlex.join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"bench {args[0]} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")


def rows(folder: Path) -> list[list[str]]:
    out = []
    for path in sorted(folder.glob("*/records/*.json")):
        rec = json.loads(path.read_text())
        if rec["status"] != "ok":
            continue
        job, mem = rec["job"], rec.get("memory") or {}
        size = (rec.get("artifact") or {}).get("bytes")
        out.append([job["model"], job["form"], job["backend"], f"{rec['stats']['p50'] / 1e6:.2f}",
                    "—" if size is None else f"{size / 2**20:.1f}", f"{mem.get('held_mb', float('nan')):.1f}",
                    f"{mem.get('peak_mb', float('nan')):.1f}", f"{mem.get('model_mb', float('nan')):.1f}"])
    return sorted(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/memory-table"))
    args = parser.parse_args()
    out = args.out.resolve()
    common = ["--preset", "quick", "--reference", "none", "--wait-quiet", "0", "--threads", "1"]
    for form in ("train", "fused"):
        if not (out / form / "records").is_dir():
            bench("run", *[a for m in MODELS for a in ("-m", m)], *[a for b in BACKENDS for a in ("-b", b)],
                  "--form", form, "--out", str(out / form), *common, cwd=out.parent)
    if not (out / "blocks" / "records").is_dir():
        bench("ablation", "blocks", *[a for b in BACKENDS for a in ("-b", b)], "--preset", "quick", "--threads", "1",
              "--out", str(out / "blocks"), cwd=out.parent)
    header = ["model", "form", "backend", "p50 ms", "artifact MB", "held MB", "peak MB", "torch module MB"]
    print(tables.markdown(header, rows(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
