"""The timing protocol, shared by every backend (kept as data so an on-device runner can apply the same rules).

Warm-up runs until the median of the last window is within a tolerance of the window before (at
least `warmup_iters` and `warmup_s`, at most `warmup_max_s`). Measurement runs at least `min_iters`
and `min_s`, then stops when the distribution-free 95% CI of the median is within `target_rel_ci`
of the median, or at `max_s` / `max_iters`. Every iteration's time is kept. The stop rule is checked
at geometrically spaced iteration counts, so its cost stays outside the timed region and small.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from harness.measure.paired import Alternation, Local, alternate
from harness.measure.stats import MIN_CI_SAMPLES, rel_ci_halfwidth
from harness.measure.windows import WINDOW_S

Clock = Callable[[], int]

# The fixed seeds of every job: its random weights (no checkpoint), its timed input, its parity input.
WEIGHTS_SEED = 0
TIMING_SEED = 0
PARITY_SEED = 1


@dataclass(frozen=True)
class ProtocolConfig:
    """The rules of one measurement; stored in every record."""

    warmup_iters: int = 3
    warmup_s: float = 0.1
    warmup_max_s: float = 0.5
    warmup_window: int = 3
    warmup_tol: float = 0.05
    # at least as many as a 95% CI of each process's median needs, however slow an iteration is
    # (a slower job overruns max_s rather than ending with no CI); records stay valid with fewer (ingest, custom)
    min_iters: int = MIN_CI_SAMPLES
    min_s: float = 0.3
    max_s: float = 0.4
    max_iters: int = 100_000
    target_rel_ci: float = 0.01
    window_s: float = WINDOW_S  # timed iterations are grouped in windows of this much wall time
    repeats: int = 3  # separate processes per job, run in rounds across the sweep
    max_repeats: int = 6  # a job whose figure is not pinned down gets more, up to this many (adaptive repeats)
    timeout_s: float = 600.0  # per process, including export / compile
    probe: bool = True  # run the machine probes before each process (`harness.host.machine.probe`)
    # the pinned workload each CPU job takes turns with (`harness.measure.reference`): "auto", a name, or "none"
    reference: str = "auto"
    preset: str = "default"
    # after timing, count each CPU job's work per inference under callgrind (`harness.measure.counted`)
    counted: bool = False

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        if not self.counted:  # a timed-only protocol reads as before, so earlier runs still resume under it
            del data["counted"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "ProtocolConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


PRESETS: dict[str, ProtocolConfig] = {
    "quick": ProtocolConfig(warmup_iters=5, warmup_s=0.05, warmup_max_s=1.0, warmup_window=5, min_iters=10,
                            min_s=0.2, max_s=1.0, target_rel_ci=0.02, repeats=1, max_repeats=1, preset="quick"),
    "default": ProtocolConfig(),
    "precise": ProtocolConfig(warmup_iters=10, warmup_s=0.5, warmup_max_s=3.0, warmup_window=10, min_iters=20,
                              min_s=1.0, max_s=2.0, target_rel_ci=0.005, repeats=8, max_repeats=16,
                              preset="precise"),
}


def preset(name: str, **overrides: object) -> ProtocolConfig:
    """A named preset with overrides; `repeats` above the preset's bound raises the bound with it."""
    cfg = replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
    return replace(cfg, max_repeats=max(cfg.max_repeats, cfg.repeats))


@dataclass
class Measurement:
    """What one process measured: warm-up and timed iterations, in ns."""

    samples_ns: list[int]
    warmup_ns: list[int] = field(default_factory=list)
    warmup_converged: bool = True
    stop_reason: str = ""  # "ci" (target reached), "max_s", "max_iters"
    wall_s: float = 0.0


def warm_up(step: Callable[[], int], cfg: ProtocolConfig, clock: Clock = time.perf_counter_ns) -> tuple[list[int], bool]:
    """Run `step` (returns one iteration's ns) until the last window's median settles; (times, settled)."""
    times: list[int] = []
    start = clock()
    w = cfg.warmup_window
    while True:
        times.append(step())
        elapsed = (clock() - start) / 1e9
        if len(times) < cfg.warmup_iters or elapsed < cfg.warmup_s:
            continue
        if elapsed >= cfg.warmup_max_s:
            return times, False
        if len(times) >= 2 * w and len(times) % w == 0:
            last, before = np.median(times[-w:]), np.median(times[-2 * w:-w])
            if abs(last - before) <= cfg.warmup_tol * before:
                return times, True


def measure(run: Callable[[], None], cfg: ProtocolConfig, timed_run: Callable[[], int] | None = None,
            clock: Clock = time.perf_counter_ns) -> Measurement:
    """Time `run` (one inference including its sync) under `cfg`.

    `timed_run`, when given, performs one inference and returns its duration in ns from a device
    timer (CUDA events); the host clock then only bounds the wall time of the protocol.
    """
    if timed_run is None:
        def timed_run() -> int:
            t0 = clock()
            run()
            return clock() - t0

    wall_start = time.perf_counter()
    warmup, converged = warm_up(timed_run, cfg, clock)
    samples: list[int] = []
    append = samples.append
    start = clock()
    next_check = cfg.min_iters
    reason = "max_iters"
    while len(samples) < cfg.max_iters:
        append(timed_run())
        if len(samples) < next_check:
            continue
        elapsed = (clock() - start) / 1e9
        if elapsed < cfg.min_s:
            next_check = len(samples) + max(1, len(samples) // 4)
            continue
        if elapsed >= cfg.max_s:
            reason = "max_s"
            break
        if rel_ci_halfwidth(samples) <= cfg.target_rel_ci:
            reason = "ci"
            break
        next_check = len(samples) + max(1, len(samples) // 4)
    return Measurement(samples, warmup, converged, reason, time.perf_counter() - wall_start)


MIN_PAIRS = 3  # per process beside a reference: the relative figure's CI over pairs needs them
# Untimed iterations at the start of each turn beside a reference: the first iteration after the other
# workload ran was 0-24% slower than the rest of its window (the second 0-13%) in a default sweep here,
# which put a window of 3-5 iterations 1-2% above the job's own figure.
REWARM_S = 0.01


def measure_beside(step: Callable[[], int], reference: Callable[[], int], cfg: ProtocolConfig) -> tuple[Measurement, Alternation]:
    """Time `step` (one inference, returns ns) under `cfg`, taking turns with a pinned `reference` workload
    window by window (ABBA, `harness.measure.paired`): the job's windows, pooled, are its measurement and
    stop by the same rules as `measure` (on the job's own time); each job window has a reference window
    beside it, for the relative figure (`harness.measure.relative`)."""
    wall_start = time.perf_counter()
    warmup, converged = warm_up(step, cfg)
    warm_up(reference, cfg)
    reason = "max_iters"

    def more(alt: Alternation) -> bool:
        nonlocal reason
        job = [t for w in alt.samples[0] for t in w]
        elapsed = sum(job) / 1e9
        if len(job) >= cfg.max_iters:
            reason = "max_iters"
            return False
        if elapsed < cfg.min_s or len(job) < cfg.min_iters or len(alt.samples[0]) < MIN_PAIRS:
            return True
        if elapsed >= cfg.max_s:
            reason = "max_s"
            return False
        if rel_ci_halfwidth(job) <= cfg.target_rel_ci:
            reason = "ci"
            return False
        return True

    # a job slower than a window takes one iteration per turn: the protocol's own bounds stay what they were
    alt = alternate((Local(step, min_iters=1, rewarm_s=REWARM_S), Local(reference, rewarm_s=REWARM_S)), 1,
                    cfg.window_s, more=more)
    samples = [t for w in alt.samples[0] for t in w]
    return Measurement(samples, warmup, converged, reason, time.perf_counter() - wall_start), alt
