"""`bench selfcheck`: does the harness measure what independent tools measure, on this machine?

Three checks: (1) the harness's own cost per iteration (an empty step timed by the protocol);
(2) its ONNX Runtime timing against a hand-written `session.run` loop; (3) its OpenVINO timing
against OpenVINO's own `benchmark_app` with the same model file, precision, threads and latency hint.

Whole-run comparisons cannot show +-3% agreement on a shared VM (runs minutes apart differ by up to
35% here), so the sides take turns in many short rounds and each round is a pair: the harness's
resident process (`harness.measure.worker --serve`, the very session a sweep times) against the resident
hand-written loop, window by window (`harness.track.lockstep`); and against `benchmark_app`, which cannot
stay resident, each `benchmark_app -niter` run (sized to the same time) between two harness windows,
paired with their mean so that a drift of the machine during the run cancels.
The result is the median of the paired ratios with a bootstrap CI over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.reference_tools import REFERENCES, benchmark_app_ms
from harness.errors import HarnessError
from harness.measure.jobs import Job
from harness.measure.protocol import ProtocolConfig, measure, preset
from harness.track.compare import paired_ci
from harness.track.lockstep import Resident, Side, SideFailed


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
    empty_step_ns: float  # what the protocol's clock adds inside each timed sample
    loop_ns_per_iter: float  # the whole loop's cost per iteration (outside the samples too)
    comparisons: list[Comparison]


def harness_overhead(cfg: ProtocolConfig | None = None) -> tuple[float, float]:
    cfg = cfg or preset("default", min_s=0.5, max_s=1.0, min_iters=1000)
    result = measure(lambda: None, cfg)
    return float(np.median(result.samples_ns)), result.wall_s * 1e9 / (len(result.samples_ns) + len(result.warmup_ns))


def _median_ms(reply: dict) -> float:
    return float(np.median(reply["samples_ns"])) / 1e6


def _check(backend: str, job: Job, cache: str, rounds: int, seconds: float, say) -> Comparison:
    from backends import registry

    kind, what = REFERENCES[backend]
    comp = Comparison(f"{backend} vs {what}")
    avail = registry.get(backend).availability()
    if not avail.ok:
        comp.skipped = f"{avail.reason}; install: {avail.install}"
        return comp
    cfg = preset("default")
    payload = {"job": job.as_dict(), "protocol": cfg.as_dict(), "backend_ref": registry.ref(backend),
               "cache_dir": cache, "parity": False}
    harness = Resident(Side("harness"), cfg.timeout_s)
    reference = None
    try:
        harness.open(payload)
        onnx = harness.ready["artifact"]["path"]
        shape = [job.batch, 3, job.input_size, job.input_size]
        if kind == "resident":
            reference = Resident(Side("reference"), cfg.timeout_s, module="backends.reference_tools")
            reference.open({"onnx": onnx, "threads": job.threads, "shape": shape})
        before = None if reference is not None else _median_ms(harness.ask({"window_s": seconds}))
        for r in range(rounds):
            say(f"{backend}: round {r + 1}/{rounds}")
            if reference is not None:  # ABBA: the reference goes first in every other round
                order = (harness, reference) if r % 2 == 0 else (reference, harness)
                replies = {side.side.name: side.ask({"window_s": seconds}) for side in order}
                comp.harness_ms.append(_median_ms(replies["harness"]))
                comp.reference_ms.append(_median_ms(replies["reference"]))
            else:  # benchmark_app between two harness windows: the pair is their mean against it
                app_ms = benchmark_app_ms(onnx, shape, job.threads, round(seconds * 1e3 / before))
                after = _median_ms(harness.ask({"window_s": seconds}))
                comp.harness_ms.append((before + after) / 2)
                comp.reference_ms.append(app_ms)
                before = after
    except (SideFailed, RuntimeError) as exc:
        raise HarnessError(f"selfcheck: {backend}: {exc}") from None
    finally:
        for side in (harness, reference):
            if side is not None:
                side.close()
    return comp


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
    comparisons = [_check(b, Job(model, b, threads=threads), cache, rounds, seconds, say) for b in REFERENCES]
    return SelfCheckResult(empty_ns, loop_ns, comparisons)
