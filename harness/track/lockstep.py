"""`bench ab`: baseline and candidate resident at once, taking turns in short windows.

Two runs made minutes apart on a shared VM differ by more than any regression worth catching (here:
up to 35% between runs of the same build). Duet benchmarking (Bulej et al. 2020) and RMIT (Abedi &
Brecht 2017) pair the measurements instead: both sides stay resident, each in its own interpreter and
environment (`python -m harness.measure.worker --serve`), and the parent passes the turn: A times a window,
then B, then B, then A (ABBA, so neither side always goes first). A slow stretch of the machine hits
both windows of a pair; the ratio is taken pair by pair, and the comparison reports the median of the
paired ratios with a bootstrap CI over pairs. Measured here (`benchmarks/lockstep_gate.py`, 20 pairs):
A/A within +-1.5% on 6 keys while separate sweeps of the same hour moved by up to 57%.

The side that waits blocks on a read and its runtime was opened with a passive wait policy (ONNX
Runtime `allow_spinning=0`, `OMP_WAIT_POLICY=PASSIVE` for PyTorch): a spinning idle pool takes the
active side's core and scatters the paired ratios from 0.5 to 2.0.

The noise floor of each key comes from A/A data in the same run: ABBA puts the same side twice in a
row between pairs (A A, B B); those two windows are compared like a pair, and their median ratio's
distance from 1 says how far a pair can move with nothing changed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from backends import registry
from backends.calibration import CalibrationSpec
from backends.config import quoted
from harness.errors import HarnessError
from harness.host import environment
from harness.measure import recording, windows
from harness.measure.inputs import Stores
from harness.measure.jobs import Job
from harness.measure.launch import Launcher, LocalLauncher, Step
from harness.measure.outcomes import Done, Failed, Lost, Skipped
from harness.measure.paired import Alternation, Resident, SideFailed, alternate, check_interpreter
from harness.measure.payload import CountPayload, JobPayload
from harness.measure.protocol import ProtocolConfig
from harness.measure.recording import RunContext, ensure_writable, judged, make_record
from harness.measure.stats import summarize
from harness.store import records
from harness.store import runs as store
from harness.store.job_key import key_label
from harness.store.record import Record, records_of
from harness.store.runs import default_cache_dir
from model_zoo.names import control_chars

PAIRS = 20
WINDOW_S = 0.1
WARM_PAIRS = 2  # alternations discarded before pairing: both sides' caches and clocks settle


@dataclass(frozen=True)
class Side:
    name: str
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    weights: str | None = None


def stored_pairs(baseline: Path, candidate: Path) -> list[Paired] | None:
    """The paired windows of two stored runs that are the two sides of one lockstep run (`bench ab` writes
    `DIR/baseline`, `DIR/candidate` and `DIR/lockstep.json`); None for two ordinary runs."""
    base, cand = Path(baseline).resolve(), Path(candidate).resolve()
    pairs = base.parent / "lockstep.json"
    if base.parent != cand.parent or (base.name, cand.name) != ("baseline", "candidate") or not pairs.is_file():
        return None
    try:
        return [Paired.from_dict(p) for p in json.loads(pairs.read_text())["pairs"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{pairs} is not a readable lockstep file ({type(exc).__name__}); run bench ab again") from None


SIDE_KEYS = ("python", "weights", "env.NAME")
SIDE_MODULE = "harness.measure.worker"  # what a resident side runs (`python -m SIDE_MODULE --serve`)
SIDE_IMPORTS = f"import {SIDE_MODULE}; from harness.plugins import load_plugins; load_plugins()"  # what it needs


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_PAIRS = 10_000  # 20 is the default; 10,000 windows of 100 ms are already a quarter of an hour a key


def parse_side(name: str, items: list[str] | None) -> Side:
    """`bench ab --baseline/--candidate KEY=VALUE` items: `python=INTERPRETER` (its own environment),
    `weights=CHECKPOINT`, `env.NAME=VALUE` (an environment variable of that side's process); repeatable,
    each key once. An interpreter is checked here (it runs and imports onebench's side), before any work."""
    given: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not (key in ("python", "weights") or (key.startswith("env.") and ENV_NAME.fullmatch(key[4:]))):
            raise HarnessError(f"--{name} {quoted(item)} is not KEY=VALUE with KEY one of {', '.join(SIDE_KEYS)} "
                               "(e.g. python=venv/bin/python, env.OMP_NUM_THREADS=1; NAME is letters, digits and _)")
        if key in given:
            raise HarnessError(f"--{name} {key}= is given twice ({quoted(given[key])} and {quoted(value)}); give it once")
        if control_chars(value):
            raise HarnessError(f"--{name} {key}= holds a control character ({quoted(value)})")
        given[key] = value
    env = {key[4:]: value for key, value in given.items() if key.startswith("env.")}
    side = Side(name, given.get("python", sys.executable), env, given.get("weights"))
    if "python" in given:
        check_interpreter(side.python, env, f"--{name} ", SIDE_IMPORTS)
    return side


def count_side(run: RunContext, side: Side, done: list[tuple[Job, dict]],
               calibration: dict[str, CalibrationSpec] | None, launcher: Launcher) -> list[dict]:
    """`bench ab --counted`: each measured job of one side counted under callgrind in that side's interpreter,
    environment and checkpoint (one launcher step, as a sweep's count), its block added to the side's record
    (rewritten). A count needs no turns: it repeats whatever the other side does, so each side is counted on
    its own."""
    from harness import PROJECT_ROOT
    from harness.measure import counted

    recs = [rec for _, rec in done]
    measured = [(job, view) for job, view in ((job, Record.of(rec)) for job, rec in done) if view.ok]
    if not measured:
        return recs
    jobs = [job for job, _ in measured]
    payload = CountPayload(jobs=tuple(JobPayload.of_job(job, run.cache_dir, protocol=run.cfg, weights=side.weights,
                                                        calibration=(calibration or {}).get(job.model)) for job in jobs),
                           ids=tuple(view.job_id for _, view in measured), python=side.python, env=side.env,
                           timeout_s=counted.STARTUP_S + counted.PER_JOB_S * len(jobs), project_root=str(PROJECT_ROOT))
    outcome = launcher.submit(Step(payload.job, counted.TARGET, payload, payload.timeout_s)).result().outcome
    if isinstance(outcome, Done):
        blocks = outcome.result["counted"]
    else:  # the count failed as a whole: every job says why, its timed record stands
        why = outcome.reason if isinstance(outcome, Skipped) else outcome.message
        blocks = {view.job_id: {"missing": f"the count failed: {why}"} for _, view in measured}
    views = [Record.of(rec) for rec in recs]
    return [recording.rewrite(run, view.revised(counted=blocks[view.job_id])).as_document()
            if view.job_id in blocks else rec for rec, view in zip(recs, views)]


@dataclass
class Paired:
    """One key's lockstep data: each side's window medians in pair order, the A/A pairs, and how many of
    the pairs each pair of processes took (more than one where a fresh pair re-measured a verdict)."""

    key: tuple
    base: list[float]
    cand: list[float]
    aa: list[tuple[float, float]]  # (earlier, later) windows of one side with nothing between them
    rounds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rounds = self.rounds or [len(self.base)]

    def ratios(self) -> np.ndarray:
        return np.asarray(self.cand) / np.asarray(self.base)

    def aa_ratios(self) -> np.ndarray:
        """Later/earlier window of one side with nothing between them: what taking a second turn in a
        row (a warmer cache, a drifting machine) does to a side that did not change."""
        return np.array([b / a for a, b in self.aa])

    def as_dict(self) -> dict[str, Any]:
        return {"key": list(self.key), "baseline_window_p50_ns": self.base, "candidate_window_p50_ns": self.cand,
                "aa_window_p50_ns": [list(p) for p in self.aa], "rounds": self.rounds}

    @classmethod
    def of(cls, key: tuple, alts: list[Alternation]) -> "Paired":
        """The pairs of one or more process pairs' alternations, in order."""
        medians = [alt.medians for alt in alts]
        return cls(key, [m for base, _ in medians for m in base], [m for _, cand in medians for m in cand],
                   [p for alt in alts for p in alt.aa], [len(base) for base, _ in medians])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Paired":
        return cls(tuple(data["key"]), data["baseline_window_p50_ns"], data["candidate_window_p50_ns"],
                   [tuple(p) for p in data["aa_window_p50_ns"]], data.get("rounds") or [])


@dataclass
class Decisive:
    """More pairs for a key whose verdict is still "noisy" (its CI straddles the threshold), in batches of
    `batch` pairs, until the CI decides or a time budget runs out: `key_s` per key, `total_s` for the whole
    comparison (a night). The seconds spent are kept, so one budget spans many jobs.

    A key found slower is measured again by a fresh pair of processes before it counts (`confirm`): a
    process keeps what the scheduler and the allocator gave it for life (which core it stays on while a
    neighbour holds the other, its memory layout), a bias that alternation cannot cancel and that A/A pairs
    of one process cannot see. Measured beside a one-core hog: A/A pairs of processes moved by up to 2% and
    once, in CI, by 3.2%, which a CI over one process pair's windows took for a regression."""

    threshold: float
    key_s: float = 60.0
    total_s: float = 600.0
    batch: int = 10
    spent_s: float = 0.0
    confirm: bool = True

    def verdict(self, paired: Paired) -> str:
        from harness.track.compare import gate_verdict, paired_figures

        _, lo, hi, floor = paired_figures(paired)
        return gate_verdict(lo, hi, self.threshold, floor)[0]

    def undecided(self, paired: Paired) -> bool:
        return self.verdict(paired) == "noisy"


def lockstep_pair(jobs: tuple[Job, Job], cfg: ProtocolConfig, sides: tuple[Side, Side], cache_dir: Path,
                  pairing: Pairing, progress, launcher: Launcher,
                  calibration: dict[str, CalibrationSpec] | None = None) -> tuple[list[list[dict]], Round, Paired]:
    """Each side opens its own job (the same job in two environments for `bench compare`; fp32 and int8
    of one model for `bench int8`) and they take turns, each pair of resident processes one launcher step
    (`ROUND_TARGET`); the pairs are keyed by the second side's job. A key the first pair of processes finds
    slower is taken again by a fresh pair (`Decisive.confirm`): each side's processes, one per pair of
    processes, the first pair's `Round` (its sides' ready messages, the host that ran it), and the pairs of
    all of them."""
    job, decisive = jobs[1], pairing.decisive
    payloads = tuple(JobPayload.of_job(side_job, cache_dir, protocol=cfg, weights=side.weights, parity=True,
                                       calibration=(calibration or {}).get(side_job.model))
                     for side, side_job in zip(sides, jobs))
    more = _ExtraPairs(decisive, job.key, pairing.pairs) if decisive is not None else None
    shown = (lambda i, total: progress(job, i, total)) if progress else None
    sent = RoundPayload(payloads=payloads, sides=sides, pairs=pairing.pairs, window_s=pairing.window_s,
                        timeout_s=cfg.timeout_s, more=more, environ=None if launcher.remote else dict(os.environ))
    rounds = [_launch_round(launcher, sent, shown)]
    if decisive is not None and decisive.confirm and decisive.verdict(Paired.of(job.key, [rounds[0].alt])) == "slower":
        rounds.append(_launch_round(launcher, sent, shown))  # a fresh pair of processes, the same budget
    if more is not None:
        decisive.spent_s += more.spent_s
    window_s = pairing.window_s
    processes: list[list[dict]] = [[], []]
    for r in rounds:
        for s in (0, 1):
            flat = [t for w in r.alt.samples[s] for t in w]
            processes[s].append({
                "samples_ns": flat, "warmup_ns": [], "warmup_converged": True, "stop_reason": "lockstep",
                "summary": summarize(flat).as_dict(), "machine": r.ends[s].get("machine", {}),
                "peak_rss_mb": r.ends[s].get("peak_rss_mb"), "memory": r.ends[s].get("memory"),
                "windows": windows.of_windows(r.alt.samples[s]), "wait_policy": r.ready[s].get("wait_policy"),
                "lockstep": {"pairs": len(r.alt.samples[s]), "window_s": window_s},
            })
    return processes, rounds[0], Paired.of(job.key, [r.alt for r in rounds])


@dataclass
class _ExtraPairs:
    """Whether a key gets another pair (`alternate`'s `more`): while its verdict, judged after every batch,
    is still noisy and the key's and the comparison's budgets last. Only the seconds of extra pairs count,
    over every pair of processes the key takes."""

    decisive: Decisive
    key: tuple
    pairs: int
    spent_s: float = 0.0
    since: float | None = None

    def __call__(self, alt: Alternation) -> bool:
        now = time.monotonic()
        self.since = now if self.since is None else self.since
        spent = self.spent_s + now - self.since
        if spent >= self.decisive.key_s or self.decisive.spent_s + spent >= self.decisive.total_s:
            return False
        extra = len(alt.samples[0]) - self.pairs
        return extra % self.decisive.batch != 0 or self.decisive.undecided(Paired.of(self.key, [alt]))

    def round_ended(self) -> None:
        if self.since is not None:
            self.spent_s += time.monotonic() - self.since
            self.since = None


class Round(NamedTuple):
    """What one pair of resident processes gave: the alternation, each side's closing report and its ready
    message, and the host block of the lab node that ran it (None: this machine)."""

    alt: Alternation
    ends: list[dict[str, Any]]
    ready: list[dict[str, Any]]
    host: dict[str, Any] | None = None


ROUND_TARGET = "harness.track.lockstep:round_step"


@dataclass(frozen=True, kw_only=True)
class RoundPayload:
    """One pair of resident processes, a launcher step: each side's job and interpreter, the turns, the
    extra pairs' budget of a decisive comparison (`more`, its seconds spent coming back), and the sender's
    environment where the step runs on its machine (a lab's node uses its own)."""

    payloads: tuple[JobPayload, JobPayload]
    sides: tuple[Side, Side]
    pairs: int
    window_s: float
    timeout_s: float  # each side's, per command (open includes an export or a compile)
    more: _ExtraPairs | None = None
    environ: dict[str, str] | None = None

    @property
    def job(self) -> Job:
        return self.payloads[1].job

    def here(self, cache_dir: str | None = None) -> RoundPayload:
        """As a node runs it: its registration of the backends, its artifact cache."""
        return dataclasses.replace(self, payloads=tuple(p.here(cache_dir) for p in self.payloads))

    @property
    def step_timeout_s(self) -> float:
        """The whole step's: both sides opening, the turns, the extra pairs' budget, both closing."""
        extra = self.more.decisive.key_s if self.more else 0.0
        return 3 * self.timeout_s + 2 * (self.pairs + WARM_PAIRS) * (self.window_s + 1.0) + 2 * extra


def round_step(payload: RoundPayload) -> dict[str, Any]:
    """In the step's process: one pair of resident processes, opened, alternated and closed; the turns
    reported as they go (`worker.report`). Returns {"round": Round, "more_spent_s": seconds of extra pairs}."""
    from harness.measure.worker import report

    if payload.environ is not None:  # the sender's, not the fork server's (started earlier, maybe otherwise)
        os.environ.clear()
        os.environ.update(payload.environ)
    more = payload.more
    residents: list[Resident] = []
    try:
        residents = [Resident(side.name, SIDE_MODULE, payload.timeout_s, side.python, side.env)
                     for side in payload.sides]  # both interpreters start at once
        for r, sent in zip(residents, payload.payloads):
            r.open(sent.as_dict())
        alt = alternate((residents[0], residents[1]), payload.pairs, payload.window_s, warm=WARM_PAIRS, more=more,
                        progress=report)
        if more is not None:
            more.round_ended()
        return {"round": Round(alt, [r.close() for r in residents], [r.ready for r in residents]),
                "more_spent_s": more.spent_s if more is not None else 0.0}
    finally:
        for r in residents:
            r.kill()


def _launch_round(launcher: Launcher, payload: RoundPayload, progress) -> Round:
    """One pair of resident processes through the launcher; a side that failed is `SideFailed`, naming it."""
    placed = launcher.submit(Step(payload.job, ROUND_TARGET, payload, payload.step_timeout_s, progress=progress)).result()
    outcome = placed.outcome
    if isinstance(outcome, Skipped):
        raise SideFailed(outcome.reason)
    if isinstance(outcome, (Failed, Lost)):
        raise SideFailed(outcome.message.removeprefix(f"{SideFailed.__name__}: "))
    if payload.more is not None:
        payload.more.spent_s = outcome.result["more_spent_s"]
    return outcome.result["round"]._replace(host=placed.host)


def cannot_time(job: Job) -> str | None:
    """Why `job` cannot be timed on this machine (lockstep has no prepare-only path), or None; on a lab, the
    launcher says whether a node can."""
    backend = registry.get(job.backend)
    avail = backend.availability()
    return avail.reason if not avail.ok else registry.unsupported(backend, job.spec())


@dataclass(frozen=True)
class Pairing:
    """How long a lockstep comparison takes turns: `pairs` alternations of `window_s` each, and with
    `decisive` more pairs for a key whose verdict is still undecided, within its budget."""

    pairs: int = PAIRS
    window_s: float = WINDOW_S
    decisive: Decisive | None = None

    def checked(self) -> Pairing:
        """Itself, or a one-line error for pairs too few for a CI or a window outside 5 ms-10 s."""
        if not 3 <= self.pairs <= MAX_PAIRS:
            raise HarnessError(f"--pairs must be between 3 (a CI over pairs needs them) and {MAX_PAIRS:,}, not {self.pairs}")
        if not 0.005 <= self.window_s <= 10:
            raise HarnessError(f"--window-ms must be between 5 and 10000, not {self.window_s * 1e3:g}")
        return self


def run_lockstep(jobs: list[Job] | list[tuple[Job, Job]], cfg: ProtocolConfig, sides: tuple[Side, Side], out_dir: Path,
                 stores: Stores, pairing: Pairing = Pairing(), *, progress=None, say=None,
                 calibration: dict[str, CalibrationSpec] | None = None,
                 launcher: Launcher | None = None) -> tuple[list[Record], list[Record], list[Paired]]:
    """Measure every job in lockstep; write each side's records as an ordinary run (indexed into the stores'
    index as they are written, as a rebuild of the index would find them), and the pairs. A job is the same
    on both sides, or a (first side's, second side's) pair of jobs (`bench int8`: fp32 against int8);
    `calibration` the int8 jobs' calibration sets; `launcher` where each pair of resident processes runs
    (default: this machine; a lab's node takes both sides of a pair, so they take turns on one machine)."""
    both_sides = [job if isinstance(job, tuple) else (job, job) for job in jobs]
    side_jobs = ([first for first, _ in both_sides], [second for _, second in both_sides])
    pairs, window_s, decisive = pairing.checked().pairs, pairing.window_s, pairing.decisive
    launcher = launcher or LocalLauncher()
    cache_dir, index_db = stores.cache_dir or default_cache_dir(), stores.index_db
    host = environment.capture()
    runs = []
    for side in sides:
        folder = out_dir / side.name
        ensure_writable(folder)
        runs.append(RunContext(f"{out_dir.name}-{side.name}", folder, dict(host), cfg, cache_dir, side.weights,
                               index_db, say=say or (lambda _line: None)))
    for run in runs:
        run.calibration = calibration or {}
    results: tuple[list[dict], list[dict]] = ([], [])
    paired: list[Paired] = []
    for both in both_sides:
        reason = next(filter(None, (launcher.cannot_run(job) if launcher.remote else cannot_time(job) for job in both)), None)
        recs: list[dict] = []
        if reason:
            recs = [make_record(run, job, "skipped", reason) for run, job in zip(runs, both)]
        else:
            try:
                processes, first, pair = lockstep_pair(both, cfg, sides, cache_dir, pairing, progress, launcher,
                                                       calibration)
            except SideFailed as exc:
                recs = [make_record(run, job, "error", str(exc)) for run, job in zip(runs, both)]
            else:
                paired.append(pair)
                if len(pair.rounds) > 1 and say:
                    say(f"{key_label(both[1].as_dict())}: slower in its first pair of processes; measured again by a fresh pair, "
                        "the verdict stands on both")
                for i, (run, job) in enumerate(zip(runs, both)):
                    ready = first.ready  # the host that ran the pair: a lab's node, or this machine
                    run.host = {**(first.host or host), "libraries": ready[i]["libraries"]}
                    opened = {**ready[i], "backend_info": {**ready[i]["backend_info"], "wait_policy": ready[i].get("wait_policy")}}
                    recs.append(judged(make_record(run, job, "ok", "", processes[i], opened), cfg))
        for i, run in enumerate(runs):
            results[i].append(recording.write(run, recs[i]))
    if cfg.counted:
        for i, (run, side, mine) in enumerate(zip(runs, sides, side_jobs)):
            results[i][:] = count_side(run, side, list(zip(mine, results[i])), calibration, launcher)
    for run, mine in zip(runs, side_jobs):
        records.write_run_json(run.out_dir, run.run_id, run.host, cfg.as_dict(), [j.as_dict() for j in mine],
                               lockstep={"pairs": pairs, "window_s": window_s, **({
                                   "threshold": decisive.threshold, "key_budget_s": decisive.key_s,
                                   "total_budget_s": decisive.total_s, "extra_pairs_s": round(decisive.spent_s, 1)}
                                   if decisive else {})})
    records.atomic_write_text(out_dir / "lockstep.json", store.dumps({"pairs": [p.as_dict() for p in paired]}))
    return records_of(results[0]), records_of(results[1]), paired
