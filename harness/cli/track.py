"""Tracking over time: `bench compare`, `nightly`, `baseline set`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from harness.cli.common import (
    RESULTS,
    ReportFmt,
    app,
    err,
    flag,
    note,
    out,
    resolve_threads,
    user_errors,
)
from harness.errors import HarnessError
from harness.publish.tables import rich_table

KEY_BUDGET_OPTION = typer.Option(60.0, "--key-budget-s", help="Lockstep: most seconds of extra pairs for a key whose verdict is still undecided (0: none).")
BUDGET_OPTION = typer.Option(600.0, "--budget-s", help="Lockstep: most seconds of extra pairs over all keys.")


def decisive_budget(threshold: float, key_s: float, total_s: float):
    """The adaptive-pairs budget of a lockstep gate, checked; None when extra pairs are off."""
    from harness.track.lockstep import Decisive

    if key_s < 0 or total_s < 0:
        raise HarnessError("--key-budget-s and --budget-s are seconds, at least 0")
    return Decisive(threshold, key_s, total_s) if key_s > 0 and total_s > 0 else None


@app.command(rich_help_panel="Track over time")
@user_errors
def compare(
    runs: list[str] = typer.Argument(None, metavar="BASELINE CANDIDATE",
                                     help="Two runs (folders, ids, 'latest'); not with --interleave."),
    threshold: float = typer.Option(0.05, "--threshold", help="Slowdown that counts as a regression (0.05 = 5%)."),
    fmt: ReportFmt = typer.Option(ReportFmt.rich, "--format", help="rich, md (a CI comment) or json."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the Markdown report here."),
    json_out: Path = typer.Option(None, "--json", help="Also write the JSON report here."),
    interleave: bool = flag(False, "--interleave", help="Re-measure both sides now in lockstep: both resident, taking turns in short windows."),
    pairs: int = typer.Option(20, "--pairs", help="--interleave: paired windows per job."),
    window_ms: float = typer.Option(100.0, "--window-ms", help="--interleave: length of one window."),
    model: list[str] = typer.Option(None, "--model", "-m", help="--interleave: models (default: the default sweep's)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="--interleave: backends."),
    precision: list[str] = typer.Option(None, "--precision", "-p", help="--interleave: precisions."),
    threads: int = typer.Option(None, "--threads", help="--interleave: threads."),
    baseline_python: str = typer.Option(sys.executable, "--baseline-python", help="--interleave: baseline interpreter."),
    candidate_python: str = typer.Option(sys.executable, "--candidate-python", help="--interleave: candidate interpreter."),
    baseline_env: list[str] = typer.Option(None, "--baseline-env", help="--interleave: KEY=VALUE for the baseline."),
    candidate_env: list[str] = typer.Option(None, "--candidate-env", help="--interleave: KEY=VALUE for the candidate."),
    baseline_weights: str = typer.Option(None, "--baseline-weights", help="--interleave: checkpoint for the baseline."),
    candidate_weights: str = typer.Option(None, "--candidate-weights", help="--interleave: checkpoint for the candidate."),
    key_budget_s: float = KEY_BUDGET_OPTION,
    budget_s: float = BUDGET_OPTION,
) -> None:
    """Compare two runs key by key; exit 3 when the gate cannot judge (a number lost, a job missing, no
    parity), 1 when a job regressed, 5 when a key stayed undecided, 0 otherwise, 2 on bad input."""
    from harness.store.runs import check_output, find_run, load_run
    from harness.track import compare as cmp

    for option, path in (("--markdown", markdown), ("--json", json_out)):
        if path:
            check_output(path, option)
    if interleave:
        if runs:
            raise HarnessError("--interleave measures both sides now: pass models and backends, not run folders")
        from harness.measure.planner import jobs as planned
        from harness.measure.planner import protocol_from_options
        from harness.measure.selection import Selection
        from harness.store.runs import default_cache_dir, default_index, new_run_dir
        from harness.track.lockstep import Side, parse_env, run_lockstep

        cfg = protocol_from_options(False, False, None)
        jobs = planned(Selection(model, backend, precision, threads=resolve_threads(threads)))
        check_side_weights(jobs, {"--baseline-weights": baseline_weights, "--candidate-weights": candidate_weights})
        sides = (Side("baseline", baseline_python, parse_env(baseline_env), baseline_weights),
                 Side("candidate", candidate_python, parse_env(candidate_env), candidate_weights))
        fresh = new_run_dir(RESULTS)
        folder = fresh.with_name("lockstep-" + fresh.name)
        with err.status("lockstep") as status:
            base, cand, paired = run_lockstep(
                jobs, cfg, sides, folder, default_cache_dir(), pairs, window_ms / 1e3,
                progress=lambda j, i, n: status.update(f"{j.model} · {j.backend}: pair {max(i + 1, 0)}/{n}"),
                index_db=default_index(RESULTS), say=lambda line: err.print(line, markup=False, highlight=False),
                decisive=decisive_budget(threshold, key_budget_s, budget_s))
        out.print(f"lockstep runs: {folder}/baseline, {folder}/candidate", markup=False, highlight=False)
    else:
        if not runs or len(runs) != 2:
            raise HarnessError("bench compare takes two runs: BASELINE CANDIDATE (or --interleave)")
        base, cand = (load_run(find_run(r, RESULTS, say=note)) for r in runs)
        paired = None
    result = cmp.compare_runs(base, cand, threshold, paired)
    report = cmp.to_markdown(result)
    if markdown:
        from harness.store.records import atomic_write_text

        atomic_write_text(markdown, report)
    if json_out:
        from harness.store.records import atomic_write_text
        from harness.store.runs import dumps

        atomic_write_text(json_out, dumps(result.as_dict()))
    if fmt is ReportFmt.md:
        out.print(report, markup=False, highlight=False, soft_wrap=True)
    elif fmt is ReportFmt.json:
        from harness.store.runs import dumps

        sys.stdout.write(dumps(result.as_dict()) + "\n")
    else:
        _print_comparison(result)
    raise typer.Exit(result.exit_code)


def check_side_weights(jobs: list, weights: dict[str, str | None]) -> None:
    """A side's checkpoint loads into the model before either side starts, as `run --weights` does: a
    missing or mismatched file is one line now, not two error records and a gate that cannot judge."""
    from harness.measure.planner import check_weights

    models = sorted({j.model for j in jobs})
    for option, path in weights.items():
        if path is None:
            continue
        if len(models) != 1:
            raise HarnessError(f"{option} loads one checkpoint: pass exactly one --model with it")
        check_weights(models[0], "fused", path)


WIDE = 140  # the table needs this many columns; narrower (or no TTY) gets the line-per-number layout


def _print_comparison(result) -> None:
    if result.failures:
        out.print(f"[bold red]{escape(result.headline())}[/]", soft_wrap=True)
        for item in result.failures:
            out.print(f"  {item}", markup=False, highlight=False, soft_wrap=True)
    if result.different_machines:
        out.print("[bold red]DIFFERENT MACHINES: not comparable as a regression test[/]")
    for line in result.environment:
        out.print(f"[yellow]environment:[/] {line}", highlight=False)
    from harness.track.compare import plain_lines, table

    if out.is_terminal and out.width >= WIDE:
        for line in result.undecided_lines():
            out.print(line, markup=False, highlight=False, style="yellow")
        colour = {"slower": "red", "faster": "green", "same": "", "noisy": "yellow"}
        header, rows = table(result)
        styles = ["bold red" if r.regression else colour[r.verdict] for r in result.rows]
        out.print(rich_table("baseline vs candidate (regression: CI above the floor and reaching "
                             f"{result.threshold:.0%} slower)", header, rows, left=(0, len(header) - 1), styles=styles))
    else:  # a CI log or a narrow terminal: every number on a line of its own that fits
        for line in plain_lines(result):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    for label, items in (("only in baseline", result.only_baseline), ("only in candidate", result.only_candidate),
                         ("not comparable", result.not_comparable)):
        for item in items:
            out.print(f"{label}: {item}", markup=False, highlight=False)
    from harness.track.compare import COLUMNS_LEGEND

    out.print(f"{COLUMNS_LEGEND}.", markup=False, highlight=False, style="dim")
    out.print(f"{result.headline()}. {result.method}.", markup=False, highlight=False, soft_wrap=True)


@app.command(rich_help_panel="Track over time")
@user_errors
def nightly(
    quick: bool = flag(False, "--quick", help="1 process per job (smoke test of the gate, not a gate)."),
    threshold: float = typer.Option(0.05, "--threshold", help="Slowdown that counts as a regression."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Models (default: the default sweep's)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backends (default: every available CPU one)."),
    baseline_python: str = typer.Option(None, "--baseline-python", help="Gate in lockstep against this interpreter's environment (shared runners)."),
    baseline_constraints: Path = typer.Option(None, "--baseline-constraints", help="Gate in lockstep against a venv built from this pinned constraints file."),
    key_budget_s: float = KEY_BUDGET_OPTION,
    budget_s: float = BUDGET_OPTION,
) -> None:
    """Lockstep vs a pinned environment, or the default sweep vs results/baseline; refresh leaderboard and history; exit 1 on a regression, 3 when it cannot judge, 5 when keys stayed undecided."""
    from harness.cli.sweep_progress import StatusLine
    from harness.measure.planner import jobs as planned
    from harness.measure.planner import protocol_from_options
    from harness.measure.selection import Selection
    from harness.track.nightly import run_nightly

    if baseline_python and baseline_constraints:
        raise HarnessError("--baseline-python and --baseline-constraints both name the baseline side; pass one")
    if baseline_constraints:
        from harness.host.baseline_env import ensure_env
        from harness.store.runs import default_cache_dir

        baseline_python = str(ensure_env(baseline_constraints, default_cache_dir(), say=lambda m: err.print(m, markup=False)))
    cfg = protocol_from_options(quick, False, None)
    jobs = planned(Selection(model, backend, threads=resolve_threads(None)))
    with err.status("nightly") as status:
        result = run_nightly(jobs, cfg, RESULTS, threshold, baseline_python=baseline_python,
                             decisive=decisive_budget(threshold, key_budget_s, budget_s),
                             listener=StatusLine(status, "nightly"),
                             say=lambda line: err.print(line, markup=False, highlight=False))
    if result.comparison:
        _print_comparison(result.comparison)
    for line in result.notes:
        out.print(line, markup=False, highlight=False)
    out.print(f"run folder: {result.run_dir}", markup=False, highlight=False)
    raise typer.Exit(result.exit_code)


baseline_app = typer.Typer(help="The committed baseline that nightly runs compare against.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline", rich_help_panel="Track over time")


@baseline_app.command("set")
@user_errors
def baseline_set(run_arg: str = typer.Argument(..., metavar="RUN")) -> None:
    """Make RUN the baseline: copy its run.json and records to results/baseline/ (replacing it)."""
    from harness.store.runs import find_run, set_baseline

    target = set_baseline(find_run(run_arg, RESULTS, say=note), RESULTS / "baseline")
    out.print(f"baseline: {target} (commit it to make it the nightly reference)", markup=False, highlight=False)


@baseline_app.command("pin")
@user_errors
def baseline_pin(
    source: Path = typer.Option(Path("constraints.txt"), "--from", help="The versions CI installs now."),
    target: Path = typer.Option(Path("constraints-baseline.txt"), "--to", help="The nightly gate's pinned baseline."),
) -> None:
    """Move the nightly gate's pinned environment forward: its runtime pins become those of --from."""
    from harness.host.baseline_env import pin_baseline

    changed = pin_baseline(source, target)
    for line in changed:
        out.print(line, markup=False, highlight=False)
    out.print(f"{target}: {len(changed)} pin(s) changed; commit it (the next night builds that environment once)",
              markup=False, highlight=False)
