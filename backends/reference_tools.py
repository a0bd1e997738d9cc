"""Each runtime's own way of timing itself, for `bench selfcheck` to hold the harness against.

Deliberately independent of the harness's protocol: a plain `session.run` loop for ONNX Runtime and
OpenVINO's `benchmark_app` (sync API, latency hint, fp32, the same threads).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HAND_LOOP_WARMUP_S = 1.0


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
        raise RuntimeError("benchmark_app is not installed; pip install 'onebench[openvino]'")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"CPU": {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"}}))
        shape_arg = "input[" + ",".join(map(str, shape)) + "]"
        done = subprocess.run([exe, "-m", onnx, "-d", "CPU", "-hint", "latency", "-api", "sync", "-load_config", str(config),
                               "-shape", shape_arg, "-t", str(int(max(1, seconds)))], capture_output=True, text=True,
                              timeout=120 + seconds)
    found = re.search(r"Median:\s+([\d.]+)\s*ms", done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"benchmark_app failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return float(found.group(1))
