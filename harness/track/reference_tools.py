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
from typing import IO, Any

import numpy as np

from harness.measure.paired import Step, host_timed, serve, serve_main, time_window

HAND_LOOP_WARMUP_S = 1.0
# backend -> what the harness is held against there
REFERENCES = {"onnxruntime": "hand-written session.run loop", "openvino": "benchmark_app"}


def _ort_loop(onnx: str, threads: int, shape: list[int], spinning: bool = False):
    """A plain ONNX Runtime session and input, as a user would write them (numpy in, numpy out). Resident
    beside the harness's session, taking turns, it must not spin (an idle spinning pool would take the
    other side's core); run alone in a process of its own, it keeps ORT's default (spinning), as
    `bench run`'s sessions do."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    return lambda: session.run(None, {name: x})


def _warm(run) -> Step:
    """Run the loop for HAND_LOOP_WARMUP_S, as a user's script would before timing; its timed step."""
    end = time.perf_counter() + HAND_LOOP_WARMUP_S
    while time.perf_counter() < end:
        run()
    return host_timed(run)


def serve_hand_loop(commands: IO[str], replies: IO[str]) -> None:
    """The hand-written loop as a resident lockstep side (`harness.measure.paired.serve`): warm up for
    HAND_LOOP_WARMUP_S, then time `session.run` for each window."""
    def open_side(payload: dict[str, Any]):
        return _warm(_ort_loop(payload["onnx"], payload["threads"], payload["shape"])), {"ready": True}

    serve(commands, replies, open_side)


def loop_once(onnx: str, shape: list[int], threads: int, seconds: float) -> list[int]:
    """One fresh process's hand-written loop with ORT's defaults (spinning pool): warm up, then time
    `session.run` for `seconds`; its samples."""
    done = subprocess.run([sys.executable, "-m", "harness.track.reference_tools", "--once",
                           json.dumps({"onnx": onnx, "shape": shape, "threads": threads, "seconds": seconds})],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the hand-written loop failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["samples_ns"]


def _once(spec: dict[str, Any]) -> None:
    step = _warm(_ort_loop(spec["onnx"], spec["threads"], spec["shape"], spinning=True))
    print(json.dumps({"samples_ns": time_window(step, spec["seconds"])}))


def benchmark_app_ms(onnx: str, shape: list[int], threads: int, iterations: int) -> float:
    """OpenVINO's benchmark_app median latency over `iterations`, sync API, latency hint, fp32, the
    same threads (its start-up and compile fall outside what it times)."""
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    if not Path(exe).exists():
        raise RuntimeError("benchmark_app is not installed; pip install 'onebench[openvino]'")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"CPU": {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"}}))
        shape_arg = "input[" + ",".join(map(str, shape)) + "]"
        done = subprocess.run([exe, "-m", onnx, "-d", "CPU", "-hint", "latency", "-api", "sync", "-load_config", str(config),
                               "-shape", shape_arg, "-niter", str(max(1, iterations))], capture_output=True, text=True,
                              timeout=300)
    median = median_ms(done.stdout)
    if done.returncode != 0 or median is None:
        raise RuntimeError(f"benchmark_app failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return median


def median_ms(report: str) -> float | None:
    """The median latency of a benchmark_app report, in ms (it reports microseconds below a millisecond)."""
    found = re.search(r"Median:\s+([\d.]+)\s*(ms|us)", report)
    return None if found is None else float(found.group(1)) / (1e3 if found.group(2) == "us" else 1.0)


if __name__ == "__main__":  # `--serve`: the hand loop as a resident lockstep side; `--once SPEC`: one timed loop
    if sys.argv[1:2] == ["--once"]:
        _once(json.loads(sys.argv[2]))
    else:
        sys.exit(serve_main(sys.argv, "harness.track.reference_tools", serve_hand_loop))
