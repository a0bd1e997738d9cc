"""The paired scheduler: two workloads take turns in short windows, and they are compared pair by pair.

One implementation behind every paired measurement of the harness: `bench ab` and the
nightly (baseline and candidate environments, each a resident process), `bench selfcheck` (the harness's
resident session against a hand-written loop), and the pinned reference every sweep job is timed beside
(`harness.measure.reference`, both in the measuring process). On a shared VM the machine's speed moves in
steps every few seconds; two windows taken back to back see the same machine far more often than two
runs minutes apart do, so the ratio is taken pair by pair and summarized by its median, with a
bootstrap CI over pairs (Bulej et al. 2020, "duet benchmarking"; Abedi & Brecht 2017, RMIT).

The order is ABBA (A B, B A, A B, ...) so neither side always goes first. Where the same side runs twice
in a row (between pairs) its two windows are an A/A pair: how far a pair moves with nothing changed.

A side is anything with `window(seconds) -> samples_ns`: a `Local` step in this process or a `Resident`
process that speaks the JSON-lines protocol of `serve`.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np

from harness import PROJECT_ROOT
from harness.errors import HarnessError
from harness.measure.windows import BOOTSTRAP_DRAWS, MIN_WINDOW_ITERS

Step = Callable[[], int]  # one iteration; returns its duration in ns
PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}  # a resident side must not spin while waiting; OpenMP reads it at start-up


def host_timed(run: Callable[[], object]) -> Step:
    """A step timing `run` with the host clock."""
    def step() -> int:
        t0 = time.perf_counter_ns()
        run()
        return time.perf_counter_ns() - t0
    return step


def time_window(step: Step, window_s: float, min_iters: int = MIN_WINDOW_ITERS) -> list[int]:
    """Iterations of `step` for `window_s` of wall time (at least `min_iters`): one window's samples."""
    end = time.perf_counter() + window_s
    samples = [step()]
    while time.perf_counter() < end or len(samples) < min_iters:
        samples.append(step())
    return samples


def paired_ci(ratios: np.ndarray, seed: int = 0, rounds: list[int] | None = None) -> tuple[float, float, float]:
    """Median of paired ratios and its 95% bootstrap CI over pairs. `rounds`: how many of the pairs, in
    order, each pair of processes took; with more than one, every draw resamples the process pairs first and
    then pairs within each (a hierarchical bootstrap), so a bias that stays with one process for its life
    (its core, its memory layout) widens the CI instead of passing for a difference."""
    ratios = np.asarray(ratios, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if rounds and len(rounds) > 1:
        groups = np.split(ratios, np.cumsum(rounds)[:-1])
        picks = rng.integers(0, len(groups), (BOOTSTRAP_DRAWS, len(groups)))
        reps = np.array([np.median(np.concatenate([groups[g][rng.integers(0, groups[g].size, groups[g].size)]
                                                   for g in pick])) for pick in picks])
    else:
        reps = np.median(ratios[rng.integers(0, ratios.size, (BOOTSTRAP_DRAWS, ratios.size))], axis=1)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    med = float(np.median(ratios))
    return med, min(float(lo), med), max(float(hi), med)


class Side(Protocol):
    def window(self, window_s: float) -> list[int]: ...


@dataclass
class Local:
    """A side in this process: its step is timed directly. `rewarm_s`: untimed iterations for that long (at
    least one) at the start of every turn, for two workloads in one process, where each turn starts with
    caches the other side filled."""

    step: Step
    min_iters: int = MIN_WINDOW_ITERS
    rewarm_s: float = 0.0

    def window(self, window_s: float) -> list[int]:
        if self.rewarm_s:
            end = time.perf_counter() + self.rewarm_s
            self.step()
            while time.perf_counter() < end:
                self.step()
        return time_window(self.step, window_s, self.min_iters)


@dataclass
class Alternation:
    """What an ABBA alternation recorded: each side's windows (samples) in pair order and the A/A pairs."""

    samples: tuple[list[list[int]], list[list[int]]] = field(default_factory=lambda: ([], []))
    aa: list[tuple[float, float]] = field(default_factory=list)  # (earlier, later) medians of one side
    turns: int = 0
    _last: tuple[int, float] | None = None

    @property
    def medians(self) -> tuple[list[float], list[float]]:
        return tuple([float(np.median(w)) for w in side] for side in self.samples)  # type: ignore[return-value]

    def ratios(self) -> np.ndarray:
        """B / A, pair by pair."""
        a, b = self.medians
        return np.asarray(b) / np.asarray(a)

    def take_turn(self, sides: tuple[Side, Side], window_s: float, keep: bool = True) -> None:
        """One pair: A then B on even turns, B then A on odd ones; `keep=False` for warm-up turns."""
        for s in ((0, 1) if self.turns % 2 == 0 else (1, 0)):
            window = sides[s].window(window_s)
            med = float(np.median(window))
            if keep:
                self.samples[s].append(window)
                if self._last is not None and self._last[0] == s:
                    self.aa.append((self._last[1], med))
            self._last = (s, med) if keep else None
        self.turns += 1


def alternate(sides: tuple[Side, Side], pairs: int, window_s: float, warm: int = 0,
              more: Callable[[Alternation], bool] | None = None,
              progress: Callable[[int, int], None] | None = None) -> Alternation:
    """`warm` discarded turns, then `pairs` kept ones, then more while `more(alternation)` says so."""
    alt = Alternation()
    for i in range(-warm, pairs):  # progress counts warm-up turns below 0
        if progress:
            progress(i, pairs)
        alt.take_turn(sides, window_s, keep=i >= 0)
    while more is not None and more(alt):
        if progress:
            progress(len(alt.samples[0]), len(alt.samples[0]) + 1)
        alt.take_turn(sides, window_s)
    return alt


class SideFailed(Exception):
    """A resident process died, hung or refused the job; the message names the side."""


def side_environment(env: dict[str, str] | None) -> dict[str, str]:
    """A resident side's environment: this one's, the passive wait policy, the side's own variables, and the
    checkout first on its `PYTHONPATH` (every side runs this harness) before the side's own entries."""
    env = dict(env or {})
    paths = [str(PROJECT_ROOT), env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))]
    return {**os.environ, **PASSIVE_ENV, **env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def check_interpreter(python: str, env: dict[str, str] | None, option: str, code: str) -> None:
    """Before any side starts or any folder is made: `python` exists, runs, and runs `code` (the imports a
    resident side makes) in the side's environment: one line naming what is missing, never a side that dies
    mid-run with error records."""
    import shutil

    found = shutil.which(python) if python else None
    if not found:
        raise HarnessError(f"{option}python={python!r}: no such interpreter; give the path of a Python that has "
                           "onebench's dependencies (e.g. venv/bin/python)")
    try:
        done = subprocess.run([found, "-c", code], env=side_environment(env), capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"{option}python={python}: cannot run it ({type(exc).__name__}: {exc})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"{option}python={python} cannot run onebench's side ({last[:160]}); install onebench's "
                           "dependencies into it (pip install -e '.[all]')")


class Resident:
    """A measurement process of its own, kept alive and timing a window when told to (JSON lines over
    stdin/stdout: `serve`). `env` adds to this process's environment; its `PYTHONPATH` entries come after
    the checkout (every side runs this harness), so a plugin can be put on one side's path only."""

    def __init__(self, name: str, module: str, timeout_s: float, python: str = sys.executable,
                 env: dict[str, str] | None = None) -> None:
        full = side_environment(env)
        self.name, self.python, self.timeout_s = name, python, timeout_s
        self.stderr = tempfile.TemporaryFile(mode="w+")
        try:
            self.proc = subprocess.Popen([python, "-m", module, "--serve"], env=full, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        except OSError as exc:
            raise HarnessError(f"cannot start {python} for the {name} side: {exc.strerror}") from None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.ready: dict[str, Any] = {}

    def open(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send the workload; the reply comes once it is open and warm."""
        self.ready = self.ask(payload)
        if "skipped" in self.ready:
            raise SideFailed(f"{self.name}: {self.ready['skipped']}")
        return self.ready

    def window(self, window_s: float) -> list[int]:
        return self.ask({"window_s": window_s})["samples_ns"]

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        try:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise SideFailed(self._death()) from None
        if not self.selector.select(self.timeout_s):
            self.proc.kill()
            raise SideFailed(f"the {self.name} process did not answer within {self.timeout_s:g} s; killed")
        line = self.proc.stdout.readline()
        if not line:
            raise SideFailed(self._death())
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict):
            self.proc.kill()
            raise SideFailed(f"the {self.name} process ({self.python}) answered {line.strip()[:80]!r}, "
                             "not onebench's lockstep protocol; is onebench installed in that environment?")
        return reply

    def _death(self) -> str:
        self.proc.wait(10)
        self.stderr.seek(0)
        lines = [ln for ln in self.stderr.read().strip().splitlines() if ln.strip()]
        return f"the {self.name} process died: {lines[-1][:300] if lines else f'exit code {self.proc.returncode}'}"

    def close(self) -> dict[str, Any]:
        """Ask the process to end (its reply: the machine signals it saw); a second close is a no-op."""
        if self.stderr.closed:
            return {}
        try:
            return self.ask({"quit": True})
        except SideFailed:
            return {}
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if not self.stderr.closed:
            self.stderr.close()


def serve(commands: IO[str], replies: IO[str], open_side: Callable[[dict[str, Any]], tuple[Step | None, dict[str, Any]]],
          finish: Callable[[], dict[str, Any]] = dict) -> None:
    """The resident side of the protocol: the first line is the payload, `open_side` opens and warms the
    workload and returns (step, ready reply) (step None: the reply says why it cannot run, and the process
    ends); then `{"window_s": S}` times one window and replies with its samples, `{"quit": true}` replies
    with `finish()` and ends. Between commands the process blocks on a read."""
    def reply(obj: dict[str, Any]) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    step, ready = open_side(json.loads(commands.readline()))
    reply(ready)
    if step is None:
        return
    for line in commands:
        command = json.loads(line)
        if command.get("quit"):
            break
        reply({"samples_ns": time_window(step, command["window_s"])})
    reply(finish())


def serve_main(argv: list[str], module: str, run: Callable[[IO[str], IO[str]], None]) -> int:
    """`python -m MODULE --serve`: replies go to the original stdout, and anything a library prints is sent
    to stderr, so the JSON-lines channel stays clean."""
    if argv[1:] != ["--serve"]:
        sys.stderr.write(f"usage: python -m {module} --serve\n")
        return 2
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    run(sys.stdin, replies)
    return 0
