"""`bench selfcheck`: does the harness measure what independent tools measure, on this machine?

Three checks: (1) the harness's own cost per iteration (an empty step timed by the protocol);
(2) its ONNX Runtime p50 against a hand-written `session.run` loop; (3) its OpenVINO p50 against
OpenVINO's own `benchmark_app` with the same model file, precision, threads and latency hint.
Harness and reference alternate (A B A B ...), each in a fresh process, so slow stretches of a shared
machine hit both sides; ratios are of medians over rounds.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.jobs import Job
from harness.protocol import ProtocolConfig, measure, preset

HAND_LOOP_WARMUP_S = 1.0


@dataclass
class Comparison:
    name: str
    harness_ms: list[float] = field(default_factory=list)
    reference_ms: list[float] = field(default_factory=list)
    skipped: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.harness_ms or not self.reference_ms:
            return None
        return statistics.median(self.harness_ms) / statistics.median(self.reference_ms)


@dataclass
class SelfCheckResult:
    empty_step_ns: float  # what the protocol's clock adds inside each timed sample
    loop_ns_per_iter: float  # the whole loop's cost per iteration (outside the samples too)
    comparisons: list[Comparison]


def harness_overhead(cfg: ProtocolConfig | None = None) -> tuple[float, float]:
    cfg = cfg or preset("default", min_s=0.5, max_s=1.0, min_iters=1000)
    result = measure(lambda: None, cfg)
    return float(np.median(result.samples_ns)), result.wall_s * 1e9 / (len(result.samples_ns) + len(result.warmup_ns))


def hand_loop_ort(payload: dict[str, Any]) -> float:
    """Median ms of a plain `session.run` loop on the harness's cached ONNX file (runs in a child)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = payload["threads"]
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(payload["onnx"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal(payload["shape"], dtype=np.float32)
    end = time.perf_counter() + HAND_LOOP_WARMUP_S
    while time.perf_counter() < end:
        session.run(None, {name: x})
    times = []
    end = time.perf_counter() + payload["seconds"]
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        session.run(None, {name: x})
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1e6


def benchmark_app_ms(onnx: str, shape: list[int], threads: int, seconds: float) -> float:
    """OpenVINO's benchmark_app median latency, sync API, latency hint, fp32, the same threads."""
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    if not Path(exe).exists():
        raise HarnessError("benchmark_app is not installed; pip install 'onebench[openvino]'")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"CPU": {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"}}))
        shape_arg = "input[" + ",".join(map(str, shape)) + "]"
        done = subprocess.run([exe, "-m", onnx, "-d", "CPU", "-hint", "latency", "-api", "sync", "-load_config", str(config),
                               "-shape", shape_arg, "-t", str(int(max(1, seconds)))], capture_output=True, text=True,
                              timeout=120 + seconds)
    found = re.search(r"Median:\s+([\d.]+)\s*ms", done.stdout)
    if done.returncode != 0 or not found:
        raise HarnessError(f"benchmark_app failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return float(found.group(1))


def run_selfcheck(model: str = "mobileone_s0", threads: int = 1, rounds: int = 3, seconds: float = 3.0,
                  cache_dir: Path | None = None, progress=None) -> SelfCheckResult:
    from backends import registry
    from harness.runner import default_cache_dir, mp_context, run_in_process

    say = progress or (lambda msg: None)
    say("harness overhead")
    empty_ns, loop_ns = harness_overhead()
    cfg = preset("default", repeats=1, min_s=seconds, max_s=seconds * 2)
    ctx = mp_context()
    cache = str(cache_dir or default_cache_dir())
    comparisons = []
    for backend in ("onnxruntime", "openvino"):
        comp = Comparison(f"{backend} vs {'hand-written session.run loop' if backend == 'onnxruntime' else 'benchmark_app'}")
        comparisons.append(comp)
        avail = registry.get(backend).availability()
        if not avail.ok:
            comp.skipped = f"{avail.reason}; install: {avail.install}"
            continue
        job = Job(model, backend, threads=threads)
        payload = {"job": job.as_dict(), "protocol": cfg.as_dict(), "backend_ref": registry.ref(backend),
                   "cache_dir": cache, "parity": False, "weights": None}
        for r in range(rounds):
            say(f"{backend}: round {r + 1}/{rounds}, harness")
            outcome = run_in_process(ctx, payload, cfg.timeout_s)
            if outcome[0] != "ok":
                raise HarnessError(f"selfcheck: the harness's {backend} job failed: {outcome[1]}")
            comp.harness_ms.append(float(np.median(outcome[1]["samples_ns"])) / 1e6)
            onnx = outcome[1]["artifact"]["path"]
            say(f"{backend}: round {r + 1}/{rounds}, reference")
            shape = [job.batch, 3, job.input_size, job.input_size]
            if backend == "onnxruntime":
                ref = run_in_process(ctx, {"onnx": onnx, "threads": threads, "shape": shape, "seconds": seconds},
                                     cfg.timeout_s, target="harness.selfcheck:hand_loop_ort")
                if ref[0] != "ok":
                    raise HarnessError(f"selfcheck: the hand-written loop failed: {ref[1]}")
                comp.reference_ms.append(ref[1])
            else:
                comp.reference_ms.append(benchmark_app_ms(onnx, shape, threads, seconds))
    return SelfCheckResult(empty_ns, loop_ns, comparisons)
