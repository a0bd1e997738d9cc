"""`bench selfcheck`: does the harness measure what independent tools measure, on this machine, at N threads?

Four checks: (1) the harness's own cost per iteration (an empty step timed by the protocol); (2) its
resident ONNX Runtime session against a resident hand-written `session.run` loop, both with the passive
wait policy lockstep uses; (3) the very processes `bench run` times (forked from the fork server, opened
with ORT's default spinning pool, warmed up and measured by the default protocol beside the pinned
reference, then gone) against fresh processes of a hand-written loop with ORT's defaults, which is what a
sweep's figure is made of; (4) its OpenVINO session against OpenVINO's own `benchmark_app` with the same
model file, precision, threads and latency hint.

Whole-run comparisons cannot show +-3% agreement on a shared VM (runs minutes apart differ by up to
35% here), so each check is the paired scheduler (`harness.measure.paired`): the two sides take turns in
ABBA order, round by round, and the result is the median of the paired ratios (harness / reference)
with a bootstrap CI over rounds. `benchmark_app` and the loop processes of (3) are not resident: each of
their turns is one run sized to the round's time. Resident sides must not spin (a side that spins while
the other has the turn takes its core), so (2) holds the harness against a loop with the same passive
policy; at 2 threads here that policy alone reads a third slower than ORT's default
(`benchmarks/spin_effect.py`), which is why (3) runs both sides as processes with the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.measure.jobs import Job
from harness.measure.launch import MEASURE, mp_context, run_in_process
from harness.measure.outcomes import Done
from harness.measure.paired import Resident, Side, SideFailed, alternate, paired_ci
from harness.measure.payload import JobPayload
from harness.measure.protocol import measure, preset
from harness.track.reference_tools import REFERENCES, benchmark_app_ms, loop_once

WARM_ROUNDS = 1


@dataclass
class Comparison:
    name: str
    harness_ms: list[float] = field(default_factory=list)  # per round: the harness's window median
    reference_ms: list[float] = field(default_factory=list)  # per round: the reference's median
    skipped: str = ""

    @property
    def ratios(self) -> np.ndarray:
        return np.asarray(self.harness_ms) / np.asarray(self.reference_ms)

    @property
    def ratio(self) -> float | None:
        return paired_ci(self.ratios)[0] if self.harness_ms else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return paired_ci(self.ratios)[1:] if self.harness_ms else None


@dataclass
class SelfCheckResult:
    threads: int
    empty_step_ns: float  # what the protocol's clock adds inside each timed sample
    loop_ns_per_iter: float  # the whole loop's cost per iteration (outside the samples too)
    comparisons: list[Comparison]


def harness_overhead() -> tuple[float, float]:
    cfg = preset("default", min_s=0.5, max_s=1.0, min_iters=1000)
    result = measure(lambda: None, cfg)
    return float(np.median(result.samples_ns)), result.wall_s * 1e9 / (len(result.samples_ns) + len(result.warmup_ns))


class BenchmarkApp:
    """`benchmark_app` as a side: each turn one `-niter` run sized to the turn's time from the harness's
    last window; its median stands for the turn (it reports no samples)."""

    def __init__(self, onnx: str, shape: list[int], threads: int, estimate_ms: float) -> None:
        self.onnx, self.shape, self.threads, self.estimate_ms = onnx, shape, threads, estimate_ms

    def window(self, window_s: float) -> list[int]:
        ms = benchmark_app_ms(self.onnx, self.shape, self.threads, round(window_s * 1e3 / self.estimate_ms))
        return [round(ms * 1e6)]


class LoopProcess:
    """The hand-written loop as a side that is not resident: each turn a fresh process with ORT's defaults
    (a spinning pool, as `bench run`'s sessions have), gone before the other side's turn."""

    def __init__(self, onnx: str, shape: list[int], threads: int) -> None:
        self.onnx, self.shape, self.threads = onnx, shape, threads

    def window(self, window_s: float) -> list[int]:
        return loop_once(self.onnx, self.shape, self.threads, window_s)


class SweepProcess:
    """A `bench run` measurement process as a side: each turn forks one from the fork server, which opens
    the prepared session, warms up and measures by the protocol, and exits (the turn's length is the
    protocol's, not the window's)."""

    def __init__(self, payload: JobPayload, timeout_s: float) -> None:
        self.payload, self.timeout_s = payload, timeout_s
        self.ctx = mp_context([payload.job.backend])

    def window(self, window_s: float) -> list[int]:
        outcome = run_in_process(self.ctx, self.payload, self.timeout_s, MEASURE)
        if not isinstance(outcome, Done):
            raise SideFailed(f"a bench run process: {getattr(outcome, 'message', None) or outcome.reason}")
        return outcome.result["samples_ns"]


def _compare(name: str, harness: Side, reference: Side, rounds: int, seconds: float, say) -> Comparison:
    """ABBA rounds of (reference, harness); the harness's medians over the reference's, round by round."""
    alt = alternate((reference, harness), rounds, seconds, warm=WARM_ROUNDS,
                    progress=lambda i, total: say(f"{name}: round {i + 1}/{total}" if i >= 0 else f"{name}: warming up"))
    ref, har = alt.medians
    return Comparison(name, [m / 1e6 for m in har], [m / 1e6 for m in ref])


def _ort_checks(job: Job, cache: str, rounds: int, seconds: float, say) -> list[Comparison]:
    from backends import registry

    names = [f"onnxruntime vs {REFERENCES['onnxruntime']}", f"bench run processes vs {REFERENCES['onnxruntime']} processes"]
    avail = registry.get("onnxruntime").availability()
    if not avail.ok:
        return [Comparison(n, skipped=f"{avail.reason}; install: {avail.install}") for n in names]
    cfg = preset("default")
    payload = JobPayload.of_job(job, cache, protocol=cfg)
    harness = Resident("harness", "harness.measure.worker", cfg.timeout_s)
    loop = Resident("reference", "harness.track.reference_tools", cfg.timeout_s)
    try:
        onnx = harness.open(payload.as_dict())["artifact"]["path"]
        shape = [job.batch, 3, job.input_size, job.input_size]
        loop.open({"onnx": onnx, "threads": job.threads, "shape": shape})
        resident = _compare(names[0], harness, loop, rounds, seconds, say)
        harness.close()
        loop.close()
        sweep = _compare(names[1], SweepProcess(payload, cfg.timeout_s), LoopProcess(onnx, shape, job.threads), rounds,
                         cfg.max_s, say)
    except (SideFailed, RuntimeError) as exc:
        raise HarnessError(f"selfcheck: onnxruntime: {exc}") from None
    finally:
        harness.kill()
        loop.close()
    return [resident, sweep]


def _openvino_check(job: Job, cache: str, rounds: int, seconds: float, say) -> Comparison:
    from backends import registry

    name = f"openvino vs {REFERENCES['openvino']}"
    avail = registry.get("openvino").availability()
    if not avail.ok:
        return Comparison(name, skipped=f"{avail.reason}; install: {avail.install}")
    cfg = preset("default")
    harness = Resident("harness", "harness.measure.worker", cfg.timeout_s)
    try:
        ready = harness.open(JobPayload.of_job(job, cache, protocol=cfg).as_dict())
        estimate_ms = float(np.median(harness.window(seconds))) / 1e6
        app = BenchmarkApp(ready["artifact"]["path"], [job.batch, 3, job.input_size, job.input_size], job.threads,
                           estimate_ms)
        return _compare(name, harness, app, rounds, seconds, say)
    except (SideFailed, RuntimeError) as exc:
        raise HarnessError(f"selfcheck: openvino: {exc}") from None
    finally:
        harness.close()


def run_selfcheck(model: str = "mobileone_s0", threads: int = 1, rounds: int = 12, seconds: float = 0.5,
                  cache_dir: Path | None = None, progress=None) -> SelfCheckResult:
    from harness.store.runs import default_cache_dir

    if rounds < 3:
        raise HarnessError(f"--rounds must be at least 3 (a CI over paired rounds needs them), not {rounds}")
    if not 0.05 <= seconds <= 60:
        raise HarnessError(f"--seconds must be between 0.05 and 60, not {seconds}")
    say = progress or (lambda msg: None)
    say("harness overhead")
    empty_ns, loop_ns = harness_overhead()
    cache = str(cache_dir or default_cache_dir())
    comparisons = [*_ort_checks(Job(model, "onnxruntime", threads=threads), cache, rounds, seconds, say),
                   _openvino_check(Job(model, "openvino", threads=threads), cache, rounds, seconds, say)]
    return SelfCheckResult(threads, empty_ns, loop_ns, comparisons)
