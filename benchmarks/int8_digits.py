"""int8's accuracy cost on a zoo model trained for real: scikit-learn's digits, offline.

Trains `--model` (its training form, the zoo's architecture, a 10-class head) on the odd-indexed digits
through the model's own preprocessing (upsampled to its input size), saves the unfused checkpoint, and
then runs what a user runs: `bench accuracy -p int8 --calibration TRAIN` on the even-indexed digits for
each backend, printing fp32 top-1, int8 top-1 and the paired Δtop-1 with its CI. Slow (minutes per
epoch at 224 on two cores): a benchmark, not a test.

    python benchmarks/int8_digits.py --model mobileone_s0 --epochs 6 --out /tmp/digits
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import model_zoo  # noqa: E402
from tests import digits  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobileone_s0")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--calibration-size", type=int, default=300)
    parser.add_argument("--option", action="append", default=[],
                        help="-o for bench accuracy (BACKEND.FIELD=VALUE, or int8.FIELD=VALUE for every backend)")
    parser.add_argument("--layers", action="store_true", help="ONNX Runtime: add the per-layer diagnosis (--layers)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/onebench-digits"))
    args = parser.parse_args()
    backends = args.backend or ["onnxruntime", "openvino", "torch-compile"]
    train, val = args.out / "train", args.out / "val"
    if not val.exists():
        digits.write_images(train, "train")
        digits.write_images(val, "val")
    ckpt = args.out / f"{args.model}-digits-{args.epochs}ep.pth"
    if not ckpt.exists():
        torch.set_num_threads(os.cpu_count() or 1)
        spec = model_zoo.get_spec(args.model)
        x, y = digits.load_folder(train, spec.preprocess)
        start = time.perf_counter()
        model = digits.fit(model_zoo.create(args.model, form="train", num_classes=10), x, y, args.epochs, batch=32,
                           lr=2e-3)
        torch.save(model.state_dict(), ckpt)
        print(f"trained {args.model} for {args.epochs} epochs in {time.perf_counter() - start:.0f} s: {ckpt}", flush=True)
    rows = []
    for backend in backends:
        results = args.out / "results"
        cmd = [sys.executable, "-m", "harness.cli", "accuracy", "-m", args.model, "-b", backend, "-p", "int8",
               "--weights", str(ckpt), "--data", str(val), "--num-classes", "10", "--calibration", str(train),
               "--calibration-size", str(args.calibration_size), "--results", str(results), "--threads", "2",
               *[f"--option={o}" for o in args.option if o.startswith((backend + ".", "int8."))],
               *(["--layers"] if args.layers and backend == "onnxruntime" else [])]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        print(done.stdout.strip() or done.stderr.strip()[-500:], flush=True)
        for path in sorted((results / "accuracy").glob(f"{args.model}.{backend}.cpu.int8.*.json")):
            rec = json.loads(path.read_text())
            rows.append((backend, rec["reference"]["top1"], rec["top1"], rec["paired"],
                         rec["job"].get("options", ""), rec["created"]))
    print(f"\n{args.model} trained {args.epochs} epochs on digits; {len(digits.digits('val')[0])} held-out images")
    print("| backend | options | fp32 top-1 | int8 top-1 | Δ top-1 pt [95% CI] | predictions changed | McNemar p |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend, ref, top1, p, options, _ in rows:
        print(f"| {backend} | {options or '-'} | {ref:.1%} | {top1:.1%} | {p['delta_top1'] * 100:+.1f} [{p['ci_low'] * 100:+.1f}, "
              f"{p['ci_high'] * 100:+.1f}] | {p['changed_predictions']} | {p['mcnemar_p']:.2g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
