"""`bench compare`: is the candidate slower than the baseline, key by key, and can we tell?

Method. Each key's figure is the quiet-window p50 (`harness.measure.windows`); the ratio candidate/baseline
gets a 95% CI from a hierarchical bootstrap (processes, then windows) of each side, or, for a lockstep
comparison (`harness.track.lockstep`), from a bootstrap over the paired window ratios. The verdict follows
from that CI against the threshold t and the key's noise floor f:

- slower (a regression): the CI lies above 1 + f, and its upper end reaches 1 + t (a slowdown of the
  threshold's size is not ruled out);
- faster: the mirror image;
- same: the CI lies within 1 +- t;
- noisy: the CI straddles the threshold without clearing the floor; never silently "same".

The floor f is what the key moves with nothing changed: at least MIN_FLOOR (calibrated from A/A runs,
see docs/gating.md), in lockstep the in-run A/A pairs' median ratio, between stored runs the machine probe's
drift (each process times a fixed conv stack before it loads the model; when the candidate run's
machine was 9% slower, a 9% difference is the machine's). An `unstable` mark no longer silences a
verdict: the CI already carries that uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.measure import trust, windows
from harness.measure.paired import paired_ci
from harness.measure.parity import describe as describe_parity
from harness.publish import tables
from harness.store.job_key import DEFAULTS, KEY_FIELDS
from harness.store.job_key import key_label as job_label
from harness.store.record import Record, Status, records_of

BOOTSTRAP = 1000
EXIT_REGRESSION, EXIT_BROKEN, EXIT_UNDECIDED = 1, 3, 5
MIN_FLOOR = 0.01
THRESHOLD = 0.05  # the timed gate's default
SERIES = ("auto", "ms", "counted")
PROBE = "conv_ns"
BUSY_PROBE = 0.10  # the machine probe moved this much between two stored runs: the machine changed, not only the job


@dataclass
class KeyResult:
    key: dict[str, Any]
    baseline_p50_ms: float
    candidate_p50_ms: float
    ratio: float  # candidate / baseline
    ci_low: float
    ci_high: float
    ratio_p90: float | None
    floor: float  # the key's noise floor: differences within 1 +- floor are not attributed
    probe_ratio: float | None  # candidate / baseline machine probe: how much the machine itself moved
    verdict: str  # faster | slower | same | noisy
    regression: bool
    why: str = ""
    unstable: bool = False  # a side was marked unstable (shown; the CI carries it)
    unit: str = "ms"  # what baseline_p50_ms / candidate_p50_ms hold: "ms", or "M instr" in a counted comparison

    @property
    def label(self) -> str:
        return job_label(self.key)


@dataclass
class Comparison:
    rows: list[KeyResult]
    series: str = "ms"  # "ms" (timed) or "counted" (work per inference under callgrind): never both in one
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)
    not_comparable: list[str] = field(default_factory=list)  # skipped on the baseline: nothing was expected
    broken: list[str] = field(default_factory=list)  # the baseline had a number, the candidate has no valid one
    cannot_judge: list[str] = field(default_factory=list)  # the gate cannot tell: it fails closed on these
    environment: list[str] = field(default_factory=list)
    different_machines: bool = False
    threshold: float = 0.05
    method: str = ""
    memory_regressions: list[str] = field(default_factory=list)  # held or peak memory grew beyond its threshold

    @property
    def regressions(self) -> list[KeyResult]:
        return [r for r in self.rows if r.regression]

    @property
    def undecided(self) -> list[KeyResult]:
        """Keys whose CI still straddles the threshold: neither a regression nor ruled out."""
        return [r for r in self.rows if r.verdict == "noisy"]

    @property
    def exit_code(self) -> int:
        """The gate fails closed: 3 when the candidate lost a number the baseline had or the gate cannot
        judge a job, else 1 on a regression, else 5 when a key stayed undecided, else 0 (README, "Exit codes")."""
        if self.broken or self.cannot_judge:
            return EXIT_BROKEN
        if self.regressions or self.memory_regressions:
            return EXIT_REGRESSION
        return EXIT_UNDECIDED if self.undecided else 0

    @property
    def failures(self) -> list[str]:
        """Why the gate failed closed, one line each: listed first in every report."""
        return [*self.broken, *self.cannot_judge]

    def headline(self) -> str:
        parts = []
        if self.broken:
            parts.append(f"FAILED CLOSED: {len(self.broken)} job(s) the baseline measured have no valid number in "
                         "the candidate (error, skipped or failed parity)")
        if self.cannot_judge:
            parts.append(f"{'' if self.broken else 'FAILED CLOSED: '}{len(self.cannot_judge)} job(s) the gate cannot "
                         "judge")
        parts.append(f"{len(self.regressions)} regression(s) over {len(self.rows)} compared jobs")
        if self.memory_regressions:
            parts.append(f"{len(self.memory_regressions)} memory regression(s)")
        if self.undecided:
            parts.append(f"{len(self.undecided)} undecided (CI straddles the threshold)")
        return "; ".join(parts)

    def undecided_lines(self) -> list[str]:
        """The undecided keys, each with its CI: listed before the table."""
        return [f"UNDECIDED: {r.label}: ratio {r.ratio:.3f} [{r.ci_low:.3f}-{r.ci_high:.3f}]" for r in self.undecided]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["regression_count"] = len(self.regressions)
        return data


def lost_number(rec: Record) -> str:
    """Why a candidate record has no valid number."""
    if not rec.ok:
        return f"candidate {rec.status}: {rec.message or 'no message'}"
    return f"candidate failed parity ({describe_parity(rec.parity.as_dict())})"


def key_label(key: tuple) -> str:
    return job_label(dict(zip(KEY_FIELDS, key)))


def busy_side(base: Record, cand: Record, row: KeyResult) -> str | None:
    """Why a stored comparison cannot call this key's change, or None: either side's own checks say its machine
    was busy while it was timed, or the machine probe moved between the runs by more than BUSY_PROBE (the
    machine, not the deployment, changed speed). Lockstep pairs are exempt: both sides shared the machine."""
    for side, rec in (("the baseline", base), ("the candidate", cand)):
        reasons = trust.machine_busy(rec)
        if reasons:
            return f"{side}'s own checks say its machine was busy while it was timed ({reasons[0]})"
    if row.probe_ratio is not None and abs(row.probe_ratio - 1) > BUSY_PROBE:
        return f"the machine probe ran {abs(row.probe_ratio - 1):.0%} {'slower' if row.probe_ratio > 1 else 'faster'} in the candidate's run"
    return None


def gate_verdict(lo: float, hi: float, threshold: float, floor: float) -> tuple[str, str]:
    """(verdict, why) from the ratio's CI, the threshold and the key's noise floor."""
    if lo > 1 + floor and hi >= 1 + threshold:
        return "slower", ""
    if hi < 1 - floor and lo <= 1 - threshold:
        return "faster", ""
    if 1 - threshold <= lo and hi <= 1 + threshold:
        return "same", ""
    return "noisy", f"95% CI {lo:.3f}-{hi:.3f} straddles the ±{threshold:.0%} threshold without clearing the ±{floor:.1%} floor"


def window_medians(rec: Record) -> list[list[float]]:
    """Each process's window medians (recomputed from the raw samples for records older than windows)."""
    window_s = rec.protocol.get("window_s", windows.WINDOW_S)
    return [[w["p50"] for w in (p.windows or windows.summaries(p.samples_ns, window_s))] for p in rec.processes]


def bootstrap_ratio(base: Record, cand: Record, seed: int = 0) -> tuple[float, float]:
    """95% CI of the ratio of quiet-window p50s, resampling processes then windows on each side."""
    ratios = windows.draws_of(window_medians(cand), BOOTSTRAP, seed + 1) / windows.draws_of(window_medians(base), BOOTSTRAP, seed)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def probe_median(rec: Record) -> float | None:
    values = [p.probe[PROBE] for p in rec.processes if PROBE in p.probe]
    return float(np.median(values)) if values else None


def _row(base: Record, cand: Record, ratio: float, lo: float, hi: float, floor: float,
         threshold: float, probe_ratio: float | None, note: str = "") -> KeyResult:
    verdict, why = gate_verdict(lo, hi, threshold, floor)
    p90 = cand.stats.p90, base.stats.p90
    return KeyResult(
        key=dict(zip(KEY_FIELDS, base.key)), baseline_p50_ms=base.stats.p50_ms, candidate_p50_ms=cand.stats.p50_ms,
        ratio=ratio, ci_low=lo, ci_high=hi, ratio_p90=p90[0] / p90[1] if all(p90) else None, floor=floor,
        probe_ratio=probe_ratio, verdict=verdict, regression=verdict == "slower",
        why="; ".join(w for w in (why, note) if w), unstable=base.unstable or cand.unstable,
    )


def compare_records(base: Record, cand: Record, threshold: float) -> KeyResult:
    """Two stored runs' records of one key."""
    ratio = cand.stats.p50 / base.stats.p50
    lo, hi = bootstrap_ratio(base, cand)
    lo, hi = min(lo, ratio), max(hi, ratio)
    pa, pb = probe_median(base), probe_median(cand)
    probe_ratio = pb / pa if pa and pb else None
    drift = abs(probe_ratio - 1) if probe_ratio is not None else 0.0
    note = (f"the machine itself ran {drift:.0%} {'slower' if probe_ratio > 1 else 'faster'} in the candidate run (probe)"
            if drift > MIN_FLOOR else "")
    return _row(base, cand, ratio, lo, hi, max(MIN_FLOOR, drift), threshold, probe_ratio, note)


def paired_figures(paired) -> tuple[float, float, float, float]:
    """(median paired ratio, its 95% CI, the key's floor from the in-run A/A pairs) of lockstep data; over
    several pairs of processes, the CI resamples them first."""
    ratio, lo, hi = paired_ci(paired.ratios(), rounds=paired.rounds)
    aa = paired.aa_ratios()
    return ratio, lo, hi, max(MIN_FLOOR, abs(float(np.median(aa)) - 1)) if aa.size else MIN_FLOOR


COUNT_FLOOR = 0.001  # two counts of one deployment agree within 0.1% (docs/counted.md: measured 0.00-0.03%)
COUNTED_THRESHOLD = 0.005  # the counted gate's default: 10x tighter than the timed 5%, 5x above its floor


def counted_problem(base: Record, cand: Record) -> str | None:
    """Why a key's counts cannot be compared (a side not counted, not countable, or counted on another
    simulated CPU or valgrind), or None."""
    for side, rec in (("baseline", base), ("candidate", cand)):
        if rec.counted is None:
            return f"the {side} was not counted (a counted comparison needs both runs made with bench run --counted)"
        if rec.counted.missing or not rec.counted.instructions:
            return f"the {side} could not be counted ({rec.counted.missing or 'no instructions'})"
    if base.counted.identity != cand.counted.identity:
        return (f"counted by {base.counted.valgrind} on {base.counted.simulated_cpu} against {cand.counted.valgrind} "
                f"on {cand.counted.simulated_cpu}: counts compare only under one counter")
    return None


def compare_counted(base: Record, cand: Record, threshold: float) -> KeyResult:
    """Two counted records of one key: the ratio of instructions per inference. A count repeats (no sampling
    error to bootstrap), so its interval is the ratio widened by the floor: the larger of COUNT_FLOOR and the
    two counts' own within-process wander."""
    ratio = cand.counted.instructions / base.counted.instructions
    floor = max(COUNT_FLOOR, base.counted.wander or 0.0, cand.counted.wander or 0.0)
    verdict, why = gate_verdict(ratio * (1 - floor), ratio * (1 + floor), threshold, floor)
    return KeyResult(key=dict(zip(KEY_FIELDS, base.key)), baseline_p50_ms=base.counted.instructions / 1e6,
                     candidate_p50_ms=cand.counted.instructions / 1e6, ratio=ratio, ci_low=ratio * (1 - floor),
                     ci_high=ratio * (1 + floor), ratio_p90=None, floor=floor, probe_ratio=None, verdict=verdict,
                     regression=verdict == "slower", why=why, unit="M instr")


def series_of(base: Sequence[Record], cand: Sequence[Record], asked: str) -> str:
    """The series a comparison decides on: "counted" where asked, or where asked "auto" and every measured
    record of both runs was counted; else "ms". A counted run is never compared with an uncounted one as if
    the two were alike: with "auto" that pair is compared in milliseconds."""
    if asked != "auto":
        return asked
    measured = [r for r in (*base, *cand) if r.ok]
    return "counted" if measured and all(r.counted is not None and r.counted.instructions for r in measured) else "ms"


def compare_paired(base: Record, cand: Record, paired, threshold: float) -> KeyResult:
    """A lockstep key: the median of paired window ratios, its CI over pairs, the in-run A/A floor. Its
    millisecond columns say the same thing in milliseconds: the baseline's median paired window, and the
    candidate's as that times the ratio, so the two divide to the printed ratio (not the quiet-window
    p50s of the sides' records, nor the candidate's own median window: other statistics)."""
    ratio, lo, hi, floor = paired_figures(paired)
    rounds = len(paired.rounds)
    note = (f"measured by {rounds} pairs of processes (the first found it slower; the CI spans all)"
            if rounds > 1 else "")
    row = _row(base, cand, ratio, lo, hi, floor, threshold, None, note)
    row.baseline_p50_ms = float(np.median(paired.base)) / 1e6
    row.candidate_p50_ms = row.baseline_p50_ms * ratio
    return row


def environment_differences(base: list[Record], cand: list[Record]) -> tuple[list[str], bool]:
    """What differs between the two runs' hosts; True when they are different machines."""
    a, b = base[0].host, cand[0].host
    lines, machines = [], False
    for label, get in (("CPU", lambda h: h["cpu"]["model"]), ("cores", lambda h: h["cpu"]["logical_cores"]),
                       ("host", lambda h: h.get("hostname")), ("memory GB", lambda h: h.get("memory_gb"))):
        if get(a) != get(b):
            lines.append(f"{label}: {get(a)} -> {get(b)}")
            machines = True
    for label, get in (("OS", lambda h: h.get("os")), ("Python", lambda h: h.get("python")),
                       ("commit", lambda h: (h.get("project") or {}).get("commit"))):
        if get(a) != get(b):
            lines.append(f"{label}: {get(a)} -> {get(b)}")
    libs_a, libs_b = a.get("libraries", {}), b.get("libraries", {})
    for name in sorted(set(libs_a) | set(libs_b)):
        if libs_a.get(name) != libs_b.get(name):
            lines.append(f"{name}: {libs_a.get(name, 'absent')} -> {libs_b.get(name, 'absent')}")
    return lines, machines


MEMORY_THRESHOLD = 0.10  # a deployment holding (or peaking at) 10% more memory is a regression of its own
MEMORY_FLOOR_MB = 2.0  # below this much growth a ratio of small figures is allocator noise, not a regression


def memory_regression(a: Record, b: Record, threshold: float) -> str | None:
    """One line when the candidate's memory above baseline (held, or peak) grew by more than `threshold` and
    by more than `MEMORY_FLOOR_MB`; None when it did not, or when either side did not measure it."""
    if a.memory is None or b.memory is None:
        return None
    grown = []
    for field_name in ("held_mb", "peak_mb"):
        old, new = getattr(a.memory, field_name), getattr(b.memory, field_name)
        if old is not None and new is not None and new - old > MEMORY_FLOOR_MB and new > old * (1 + threshold):
            grown.append(f"{field_name.removesuffix('_mb')} {old:.1f} -> {new:.1f} MB ({new / max(old, 1e-9) - 1:+.0%})")
    return f"{key_label(a.key)}: memory grew beyond {threshold:.0%}: {', '.join(grown)}" if grown else None


def compare_runs(base: Sequence[Record | Mapping[str, Any]], cand: Sequence[Record | Mapping[str, Any]], threshold: float | None = None,
                 paired: list | None = None, memory_threshold: float = MEMORY_THRESHOLD, series: str = "ms") -> Comparison:
    """Key by key; `paired` (lockstep data, `harness.track.lockstep.Paired`) replaces run-vs-run statistics.
    Memory above baseline is compared too: growth beyond `memory_threshold` is a regression of its own.
    `series` "counted" decides on instructions per inference (`bench run --counted`), "auto" on them where
    both runs were counted; `threshold` defaults to the series' own (5% timed, 0.5% counted)."""
    if series not in SERIES:
        raise HarnessError(f"unknown series {series!r}; use {', '.join(SERIES)}")
    series = series_of(records_of(base), records_of(cand), series)
    if threshold is None:
        threshold = COUNTED_THRESHOLD if series == "counted" else THRESHOLD
    if not 0 < memory_threshold < math.inf:  # NaN and infinity too
        raise HarnessError(f"--memory-threshold must be a fraction above 0 (0.10 = 10%), not {memory_threshold}")
    if not 0 < threshold < 1:
        raise HarnessError(f"--threshold must be a fraction between 0 and 1 (0.05 = 5%), not {threshold}")
    if not base or not cand:
        raise HarnessError(f"the {'baseline' if not base else 'candidate'} run holds no record; nothing to compare")
    base, cand = records_of(base), records_of(cand)
    by_a, by_b = {r.key: r for r in base}, {r.key: r for r in cand}
    pairs = {p.key: p for p in paired or []}
    env, machines = environment_differences(base, cand)
    result = Comparison(rows=[], series=series, environment=env, different_machines=machines and series != "counted",
                        threshold=threshold,
                        only_baseline=[key_label(k) for k in by_a if k not in by_b],
                        only_candidate=[key_label(k) for k in by_b if k not in by_a])
    result.cannot_judge += [f"{label}: missing from the candidate (the baseline has it)" for label in result.only_baseline]
    for key in (k for k in by_a if k in by_b):
        a, b = by_a[key], by_b[key]
        if a.status is Status.SKIPPED and not b.ok:
            result.not_comparable.append(f"{key_label(key)} (skipped on both sides: {a.message})")
            continue
        if a.status is Status.SKIPPED:
            result.not_comparable.append(f"{key_label(key)} (baseline skipped, candidate {b.status})")
            continue
        if not a.has_number:
            why = a.message if not a.ok else f"failed parity ({describe_parity(a.parity.as_dict())})"
            if not b.has_number and b.status == a.status == Status.ERROR and b.message == a.message:
                # one failure for both sides (a lockstep pair ends when either process dies): its message names the side
                result.cannot_judge.append(f"{key_label(key)}: neither side has a number ({why})")
            else:
                result.cannot_judge.append(f"{key_label(key)}: the baseline has no number ({a.status}: {why})")
            continue
        if not b.has_number:
            result.broken.append(f"{key_label(key)}: {lost_number(b)}")
            continue
        if b.parity is None and b.job.boundary != "on-device":  # the device runner checks none
            result.cannot_judge.append(f"{key_label(key)}: the candidate has no parity result (its outputs were "
                                       "never checked against PyTorch fp32)")
            continue
        if series == "counted":
            problem = counted_problem(a, b)
            if problem:
                result.cannot_judge.append(f"{key_label(key)}: {problem}")
                continue
            row = compare_counted(a, b, threshold)
        else:
            row = compare_paired(a, b, pairs[key], threshold) if key in pairs else compare_records(a, b, threshold)
        grown = memory_regression(a, b, memory_threshold)  # memory is judged whatever the time's verdict
        if grown:
            result.memory_regressions.append(grown)
        busy = busy_side(a, b, row) if series == "ms" and key not in pairs and row.verdict in ("slower", "faster") else None
        if busy:  # a change the machine may have made: fail closed rather than call it (#49)
            result.cannot_judge.append(f"{key_label(key)}: ratio {row.ratio:.3f} ({row.verdict}), but {busy}; measure "
                                       "again on a quiet machine, or time both now in lockstep (bench ab)")
            continue
        if not all(np.isfinite([row.ratio, row.ci_low, row.ci_high, row.baseline_p50_ms, row.candidate_p50_ms])):
            result.cannot_judge.append(f"{key_label(key)}: a figure is not finite (ratio {row.ratio}, CI "
                                       f"{row.ci_low}-{row.ci_high})")
            continue
        result.rows.append(row)
    if not result.rows:
        result.cannot_judge.insert(0, "no job was compared: the two runs have no measured job in common")
    how = ("counted: instructions per inference under callgrind on a fixed simulated CPU, candidate / baseline, "
           f"widened by the counts' repeatability (floor at least {COUNT_FLOOR:.1%})" if series == "counted" else
           "lockstep: median of paired window ratios, 95% bootstrap CI over pairs, floor from the in-run A/A pairs"
           if paired is not None else
           "quiet-window p50 ratio, 95% CI by hierarchical bootstrap (processes, then windows), floor from the "
           "machine probe's drift")
    least = COUNT_FLOOR if series == "counted" else MIN_FLOOR
    result.method = (f"{how}; regression = CI above 1 + floor (at least {least:.1%}) and reaching "
                     f"1 + {threshold:.1%}")
    return result


def _opt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


COLUMNS_LEGEND = ("ratio = candidate p50 / baseline p50 with its 95% CI; floor = this key's noise floor (a ratio "
                  "inside 1 ± floor is not a change); p90 ratio = the same for the p90; machine = the machine probe "
                  "(a fixed convolution timed beside every process), candidate / baseline: above 1 the candidate's "
                  "machine itself was slower, and the floor widens by that drift")
TABLE_HEADER = ("job", "baseline ms", "candidate ms", "ratio [95% CI]", "floor", "p90 ratio", "machine", "verdict")


COUNTED_LEGEND = ("counted comparison: M instr = millions of instructions per inference counted under callgrind on a "
                  "fixed simulated CPU (work, not time: never compared with milliseconds); ratio = candidate / "
                  "baseline, its interval the counts' repeatability; floor = that repeatability (at least "
                  f"{COUNT_FLOOR:.1%}); more instructions beyond the threshold is a regression")
COUNTED_HEADER = ("job", "baseline M instr", "candidate M instr", "ratio [repeatability]", "floor", "p90 ratio", "machine",
                  "verdict")


def legend(c: Comparison) -> str:
    return COUNTED_LEGEND if c.series == "counted" else COLUMNS_LEGEND


def table(c: Comparison) -> tuple[tuple[str, ...], list[list[str]]]:
    """The comparison's rows as text, for both renderers; a verdict carries its reason (why it is noisy)."""
    rows = []
    digits = 4 if c.series == "counted" else 3  # a counted ratio is read to the 0.1%
    for r in c.rows:
        verdict = "REGRESSION" if r.regression else r.verdict + (f" ({r.why})" if r.why else "")
        rows.append([r.label, f"{r.baseline_p50_ms:.3f}", f"{r.candidate_p50_ms:.3f}",
                     f"{r.ratio:.{digits}f} [{r.ci_low:.{digits}f}–{r.ci_high:.{digits}f}]", f"±{r.floor:.1%}", _opt(r.ratio_p90),
                     _opt(r.probe_ratio), verdict])
    return (COUNTED_HEADER if c.series == "counted" else TABLE_HEADER), rows


SHORT_ALWAYS = ("model", "backend", "precision")  # in every short label; other key fields only where rows differ


def split_keys(keys: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """(the key fields every row shares, spelt once; each row's short label of the rest), e.g.
    ("fused · cpu · batch 1 · 1 threads · boundary host-sync", ["mobileone_s0 · onnxruntime · fp32", ...])."""
    full = [{**DEFAULTS, **k} for k in keys]
    varying = [f for f in KEY_FIELDS if f in SHORT_ALWAYS or len({str(k.get(f)) for k in full}) > 1]
    spell = {"batch": "batch {}", "threads": "{} threads", "boundary": "boundary {}", "form": "{}"}
    shared = " · ".join(spell.get(f, "{}").format(full[0][f]) for f in KEY_FIELDS
                        if f not in varying and full[0][f] != DEFAULTS.get(f)) if full else ""  # NCHW goes unsaid
    labels = [" · ".join(spell.get(f, "{}").format(k[f]) if f not in SHORT_ALWAYS else str(k[f]) for f in varying)
              for k in full]
    return shared, labels


def plain_lines(c: Comparison) -> list[str]:
    """The comparison for a CI log or a narrow terminal (80 columns, no TTY): the shared key fields once,
    then per key its short label and, indented, every number on one line that fits. Nothing is squeezed."""
    shared, labels = split_keys([r.key for r in c.rows])
    lines = c.undecided_lines() + ([f"jobs: {shared}"] if shared else [])
    for r, label in zip(c.rows, labels):
        verdict = "REGRESSION" if r.regression else r.verdict
        lines.append(f"{label}: {verdict}")
        digits = 4 if c.series == "counted" else 3  # a counted ratio is read to the 0.1%
        lines.append(f"    {r.baseline_p50_ms:.3f} -> {r.candidate_p50_ms:.3f} {r.unit}  ratio {r.ratio:.{digits}f} "
                     f"[{r.ci_low:.{digits}f}-{r.ci_high:.{digits}f}]  floor ±{r.floor:.1%}")
        if r.why:
            lines.append(f"    {r.why}")
    return lines


def to_markdown(c: Comparison) -> str:
    lines = []
    if c.failures:
        lines += [f"**{c.headline()}**\n", *[f"- {item}" for item in c.failures], ""]
    if c.undecided:
        lines += [*[f"- {line}" for line in c.undecided_lines()], ""]
    if c.memory_regressions:
        lines += [*[f"- **MEMORY REGRESSION** {line}" for line in c.memory_regressions], ""]
    if c.different_machines:
        lines.append("**Different machines: these numbers are not comparable as a regression test.**\n")
    if c.environment:
        lines.append("Environment changes: " + "; ".join(c.environment) + "\n")
    header, rows = table(c)
    rows = [[*row[:-1], "**REGRESSION**" if row[-1] == "REGRESSION" else row[-1]] for row in rows]
    lines.append(tables.markdown(header, rows, left=(0, len(header) - 1)))
    for label, items in (("Only in baseline", c.only_baseline), ("Only in candidate", c.only_candidate),
                         ("Not comparable", c.not_comparable)):
        if items:
            lines.append(f"\n{label}: " + "; ".join(items))
    lines.append(f"\n{legend(c)}.")
    lines.append(f"\n{c.headline()}. Method: {c.method}.")
    return "\n".join(lines) + "\n"
