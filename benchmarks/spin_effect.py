"""What ONNX Runtime's spinning thread pool does to a 2-thread figure here: spin on (every `bench run` session,
ORT's default) against spin off (the passive policy of lockstep sides and selfcheck's loops).

ABBA pairs of fresh processes, each a plain `session.run` loop on the harness's cached ONNX export for
`--seconds`, its quiet-window p50 (the leaderboard's rule) printed; then the median ratio spin-on / spin-off
with a bootstrap CI over pairs. Run alone on the machine.

    python benchmarks/spin_effect.py [--model mobileone_s0] [--threads 2] [--pairs 8] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(model: str, threads: int, spin: bool, seconds: float) -> None:
    import onnxruntime as ort
    import torch

    import model_zoo
    from backends.onnx_export import export_onnx
    from harness.measure.paired import host_timed, time_window
    from harness.measure.windows import quiet_p50
    from harness.store.runs import default_cache_dir
    from model_zoo.weights import state_sha256

    torch.manual_seed(0)
    net = model_zoo.create(model)
    path, _ = export_onnx(net, model, state_sha256(net), 1, 224, default_cache_dir())
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    name = session.get_inputs()[0].name
    step = host_timed(lambda: session.run(None, {name: x}))
    time_window(step, 0.5)  # warm-up
    medians = [float(np.median(time_window(step, 0.1))) for _ in range(int(seconds / 0.1))]
    print(json.dumps({"quiet_ms": quiet_p50([np.asarray(medians)]) / 1e6}))


def one(model: str, threads: int, spin: bool, seconds: float) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", "--model", model, "--threads", str(threads),
                          "--spin", str(int(spin)), "--seconds", str(seconds)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["quiet_ms"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mobileone_s0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--spin", type=int, default=1)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.model, args.threads, bool(args.spin), args.seconds)
        return
    from harness.measure.paired import paired_ci

    ratios = []
    for i in range(args.pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        got = {spin: one(args.model, args.threads, spin, args.seconds) for spin in order}
        ratios.append(got[True] / got[False])
        print(f"pair {i + 1}: spin on {got[True]:.3f} ms, off {got[False]:.3f} ms, ratio {ratios[-1]:.3f}", flush=True)
    med, lo, hi = paired_ci(np.asarray(ratios))
    print(f"{args.model}, {args.threads} threads: spin on / off = {med:.3f} [95% CI {lo:.3f}-{hi:.3f}] over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
