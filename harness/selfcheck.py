"""`bench selfcheck`: does the harness measure what independent tools measure, on this machine?

Three checks: (1) the harness's own cost per iteration (an empty step timed by the protocol);
(2) its ONNX Runtime p50 against a hand-written `session.run` loop; (3) its OpenVINO p50 against
OpenVINO's own `benchmark_app` with the same model file, precision, threads and latency hint.
Harness and reference alternate (A B A B ...), each in a fresh process, so slow stretches of a shared
machine hit both sides; ratios are of medians over rounds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.reference_tools import benchmark_app_ms
from harness.errors import HarnessError
from harness.jobs import Job
from harness.protocol import ProtocolConfig, measure, preset


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
                                     cfg.timeout_s, target="backends.reference_tools:hand_loop_ort")
                if ref[0] != "ok":
                    raise HarnessError(f"selfcheck: the hand-written loop failed: {ref[1]}")
                comp.reference_ms.append(ref[1])
            else:
                try:
                    comp.reference_ms.append(benchmark_app_ms(onnx, shape, threads, seconds))
                except RuntimeError as exc:
                    raise HarnessError(f"selfcheck: {exc}") from None
    return SelfCheckResult(empty_ns, loop_ns, comparisons)
