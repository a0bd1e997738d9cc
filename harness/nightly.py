"""`bench nightly`: the regression gate a CI job (or a laptop) runs every night.

Runs the default sweep into a new run folder, compares it with the committed baseline
(`results/baseline/`), writes the comparison (Markdown for a CI comment, JSON), refreshes the
leaderboard (Markdown with its plots, and the static site) and the history plot, and returns 1 when
any job regressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import accuracy, compare, runner, store
from harness.errors import HarnessError
from harness.history import load_series, plot
from harness.jobs import Job
from harness.protocol import ProtocolConfig
from harness.records import atomic_write_text
from harness.site import write_markdown, write_site


@dataclass
class NightlyResult:
    run_dir: Path
    comparison: compare.Comparison | None
    notes: list[str]

    @property
    def exit_code(self) -> int:
        return 1 if self.comparison and self.comparison.regressions else 0


def run_nightly(jobs: list[Job], cfg: ProtocolConfig, root: Path, threshold: float = 0.05,
                progress=None) -> NightlyResult:
    fresh = runner.new_run_dir(root)  # unique (time + random suffix): two nights never share a folder
    run_dir = fresh.with_name(f"nightly-{fresh.name}")
    records = runner.run_sweep(jobs, cfg, run_dir, index_db=store.default_index(root), progress=progress)
    notes = []
    measured = accuracy.load_all(root)
    write_markdown(records, measured, root / "leaderboard.md")
    notes.append(f"site: {write_site(records, measured, root / 'site')}")
    result = None
    baseline = root / "baseline"
    if (baseline / "records").is_dir():
        result = compare.compare_runs(store.load_run(baseline), records, threshold)
        atomic_write_text(run_dir / "compare.md", compare.to_markdown(result))
        atomic_write_text(run_dir / "compare.json", store.dumps(result.as_dict()))
    else:
        notes.append(f"no baseline at {baseline}: nothing to gate on; `bench baseline set {run_dir}` and commit it")
    try:
        notes.append(f"history plot: {plot(load_series(store.default_index(root)), root / 'history.png')}")
    except HarnessError as exc:
        notes.append(f"history plot not drawn: {exc}")
    return NightlyResult(run_dir, result, notes)
