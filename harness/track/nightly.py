"""`bench nightly`: the regression gate a CI job (or a laptop) runs every night.

Two ways to gate. On a quiet, dedicated machine: the default sweep into a new run folder, compared
with the committed baseline (`results/baseline/`). On a shared runner, where runs minutes apart differ
by more than a regression: lockstep (`harness.track.lockstep`) between the pinned baseline environment
(`--baseline-python`, or a venv built from `--baseline-constraints`) and the current one, the same
night, the current side's records standing as the night's run. Either way it writes the comparison
(Markdown for a CI comment, JSON), refreshes the leaderboard (Markdown with its plots, and the static
site) and the history plot, and returns 1 when any job regressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.measure import runner
from harness.measure.inputs import Stores
from harness.measure.jobs import Job
from harness.measure.protocol import ProtocolConfig
from harness.publish.site import write_markdown, write_site
from harness.store import accuracy_records as accuracy
from harness.store import runs as store
from harness.store.record import Record
from harness.store.records import atomic_write_text
from harness.track import compare
from harness.track.history import GATE_FILE, gate_series, load_series, plot
from harness.track.lockstep import Pairing


@dataclass
class NightlyResult:
    run_dir: Path
    comparison: compare.Comparison | None
    notes: list[str]
    measured: bool = True  # some job of the night has a number

    @property
    def exit_code(self) -> int:
        """The comparison's code; without a baseline, 3 when the night measured nothing (it cannot judge)."""
        if self.comparison:
            return self.comparison.exit_code
        return 0 if self.measured else compare.EXIT_BROKEN


def run_nightly(jobs: list[Job], cfg: ProtocolConfig, root: Path, threshold: float | None = None,
                listener=None, baseline_python: str | None = None, say=None, decisive=None) -> NightlyResult:
    """The night: a sweep against the stored baseline, or lockstep against a pinned environment. A counted
    protocol (`bench nightly --counted`) decides on instructions per inference (threshold 0.5% by default)."""
    series = "counted" if cfg.counted else "ms"
    if threshold is None:
        threshold = compare.COUNTED_THRESHOLD if cfg.counted else compare.THRESHOLD
    fresh = store.new_run_dir(root)  # unique (time + random suffix): two nights never share a folder
    run_dir = fresh.with_name(f"nightly-{fresh.name}")
    if baseline_python:
        return _lockstep_night(jobs, cfg, root, run_dir, threshold, baseline_python, decisive, series)
    records = runner.run_sweep(jobs, cfg, run_dir, stores=Stores(index_db=store.default_index(root)), listener=listener,
                               say=say, neighbour_wait_s=60.0 if say else None)
    notes = shared_machine_note(records)
    measured = accuracy.load_all(root)
    write_markdown(records, measured, root / "leaderboard.md")
    notes.append(f"site: {write_site(records, measured, root / 'site')}")
    result = None
    baseline = root / "baseline"
    if (baseline / "records").is_dir():
        result = compare.compare_runs(store.load_run(baseline), records, threshold, series=series)
        _write_gate(run_dir, result, records)
    else:
        notes.append(f"no baseline at {baseline}: nothing to gate on; `bench baseline set {run_dir}` and commit it")
    return NightlyResult(run_dir, result, notes + _history(root), any(r.ok for r in records))


SHARED_SIGNS = ("stolen by the hypervisor", "other processes used", "a neighbour was busy")


def shared_machine_note(records: list[Record]) -> list[str]:
    """The stored-baseline gate is for dedicated machines: say so when this night's sweep saw the signs
    of a shared one (steal time, a busy neighbour)."""
    seen = [r.job_id for r in records if any(sign in reason for reason in r.unstable_reasons for sign in SHARED_SIGNS)]
    if not seen:
        return []
    return [f"WARNING: this machine looks shared (steal time or a busy neighbour in {len(seen)} of {len(records)} jobs): "
            "gating against a stored baseline cannot tell a small regression from the host here; gate in lockstep "
            "against a pinned environment (`bench nightly --baseline-constraints constraints-baseline.txt`)"]


def _lockstep_night(jobs: list[Job], cfg: ProtocolConfig, root: Path, run_dir: Path, threshold: float,
                    baseline_python: str, decisive=None, series: str = "ms") -> NightlyResult:
    """Baseline environment and current one resident together, taking turns; the current side's
    records are the night's run (indexed, on the leaderboard)."""
    import sys

    from harness.track.lockstep import Decisive, Side, run_lockstep

    decisive = decisive or Decisive(threshold, key_s=0, total_s=0)  # no extra pairs, but a slower key is confirmed
    sides = (Side("baseline", baseline_python), Side("candidate", sys.executable))
    warnings: list[str] = []
    base, current, paired = run_lockstep(jobs, cfg, sides, run_dir, Stores(store.default_cache_dir(), store.default_index(root)),
                                         Pairing(decisive=decisive), say=warnings.append)
    result = compare.compare_runs(base, current, threshold, paired, series=series)
    _write_gate(run_dir, result, current)
    measured = accuracy.load_all(root)
    write_markdown(current, measured, root / "leaderboard.md")
    notes = [f"lockstep against {baseline_python}", f"site: {write_site(current, measured, root / 'site')}", *warnings]
    return NightlyResult(run_dir, result, notes + _history(root),
                         any(r.ok for r in current))


def _write_gate(run_dir: Path, result: compare.Comparison, current: list[Record]) -> None:
    """The night's verdicts: compare.md for a CI comment, compare.json (with when and which commit) for the
    gate's own history."""
    first = current[0] if current else None
    atomic_write_text(run_dir / "compare.md", compare.to_markdown(result))
    atomic_write_text(run_dir / GATE_FILE, store.dumps({
        "created": first.created if first else "", "commit": (first.host.get("project") or {}).get("commit") if first else None,
        **result.as_dict()}))


def _history(root: Path) -> list[str]:
    """The history plots: each key's relative figure over runs (milliseconds where a key has none), and
    (after lockstep nights) the gate's own series, each night's ratio against the pinned environment."""
    notes = []
    for what, series, name in (("history", lambda: load_series(store.default_index(root)), "history.png"),
                               ("gate history", lambda: gate_series(root), "gate-history.png")):
        try:
            notes.append(f"{what} plot: {plot(series(), root / name)}")
        except HarnessError as exc:
            notes.append(f"{what} plot not drawn: {exc}")
    return notes
