"""How does this machine's speed move? Rotating 100-ms windows of several workloads, side by side.

Runs ONNX Runtime on a few zoo models (single-threaded, the harness's cached ONNX exports) and two
fixed PyTorch probes (a 6-layer conv stack, a cache-resident GEMM) in turn, one 100-ms window each,
for `--seconds`, and prints every workload's window medians relative to its fastest, and the
correlation of their logs. On this project's 2-vCPU CI host it showed the whole machine switching
between a few discrete speeds (1.0, ~1.25, ~1.35, ~1.6x) every few seconds, for every workload at
once (r = 0.93-0.97 between models): the finding behind `harness.measure.windows`.

    python benchmarks/machine_states.py [--seconds 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ("mobileone_s0", "mobilenetv2_100", "mobileone_s2")


def ort_step(model: str, threads: int):
    import onnxruntime as ort
    import torch

    import model_zoo
    from backends.onnx_export import export_onnx
    from harness.store.runs import default_cache_dir
    from model_zoo.weights import state_sha256

    torch.manual_seed(0)
    net = model_zoo.create(model)
    path, _ = export_onnx(net, model, state_sha256(net), 1, 224, default_cache_dir())
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: x})


def probes(threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    a, x = torch.ones(384, 384), torch.ones(1, 32, 56, 56)
    convs = torch.nn.Sequential(*[torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(6)]).eval()

    def conv() -> None:
        with torch.inference_mode():
            convs(x)

    return {"conv probe": conv, "gemm probe": lambda: torch.mm(a, a)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from harness.measure.paired import host_timed, time_window

    steps = {m: ort_step(m, args.threads) for m in MODELS} | probes(args.threads)
    for step in steps.values():
        for _ in range(20):
            step()
    medians: dict[str, list[float]] = {k: [] for k in steps}
    end = time.time() + args.seconds
    while time.time() < end:
        for name, step in steps.items():
            medians[name].append(float(np.median(time_window(host_timed(step), 0.1))))
    rel = {k: np.asarray(v) / min(v) for k, v in medians.items()}
    for name, values in rel.items():
        print(f"{name:16s} fastest {min(medians[name]) / 1e6:7.2f} ms; windows within 3% of it: "
              f"{np.mean(values <= 1.03):4.0%}; relative: " + " ".join(f"{v:.2f}" for v in values[:40]))
    names = list(rel)
    corr = np.corrcoef([np.log(rel[k]) for k in names])
    print("correlation of log window medians:")
    for i, name in enumerate(names):
        print(f"  {name:16s} " + " ".join(f"{c:5.2f}" for c in corr[i]))


if __name__ == "__main__":
    main()
