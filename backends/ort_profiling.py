"""ONNX Runtime's session profiling: a twin session of the same file with `enable_profiling`, its trace
read back as each inference's node times (the kernel time of every node the optimized graph runs)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from backends.onnx_layers import LayerNames
from backends.profiling import PROFILE_WARMUP as WARMUP
from backends.profiling import OpTime, Profiled, timed


def trace_ops(events: list[dict], names: LayerNames) -> list[list[OpTime]]:
    """Each `model_run` of the trace with the node kernel times that fall inside it."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    inferences: list[list[OpTime]] = [[] for _ in runs]
    for event in sorted((e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")),
                        key=lambda e: e["ts"]):
        at = next((i for i, (start, end) in enumerate(runs) if start <= event["ts"] <= end), None)
        if at is None:
            continue
        name, args = event["name"].removesuffix("_kernel_time"), event.get("args", {})
        op = args.get("op_name", "")
        inferences[at].append(names.op_time(name, op, event["dur"] / 1e3,
                                            args.get("provider", "").removesuffix("ExecutionProvider")))
    return inferences


def profile_session(open_session: Callable[[object], tuple[object, Callable[[], None]]], n: int,
                    names: LayerNames, version: str) -> Profiled:
    """`open_session(options_hook)` opens a twin session whose options the hook turns profiling on for,
    and returns it with its `run`; `n` inferences after the warm-up are kept."""
    with tempfile.TemporaryDirectory(prefix="onebench-ort-profile-") as tmp:
        def profiling(options) -> None:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(tmp) / "ort")

        session, run = open_session(profiling)
        walls = [timed(run) for _ in range(WARMUP + n)][WARMUP:]
        trace = Path(session.end_profiling())
        events = json.loads(trace.read_text())
    return Profiled(f"onnxruntime {version} session profiling", trace_ops(events, names)[WARMUP:], walls)
