"""Tracking over time: `bench compare`, `nightly`, `baseline set`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from harness.cli.common import (
    CLUSTER_OPTION,
    FORMAT_OPTION,
    PRESET_OPTION,
    QUICK_ALIAS,
    RESULTS,
    THREADS_OPTION,
    CompareSeries,
    Fmt,
    app,
    checked_cluster,
    err,
    lab,
    note,
    out,
    preset_of,
    resolve_threads,
    user_errors,
)
from harness.errors import HarnessError
from harness.publish.tables import rich_table

KEY_BUDGET_OPTION = typer.Option(60.0, "--key-budget-s", help="Lockstep: most seconds of extra pairs for a key whose verdict is still undecided (0: none).")
BUDGET_OPTION = typer.Option(600.0, "--budget-s", help="Lockstep: most seconds of extra pairs over all keys.")


def decisive_budget(threshold: float, key_s: float, total_s: float):
    """The lockstep gate's judge: the adaptive-pairs budget, checked (0 s: no extra pairs), and the threshold a
    key found slower is confirmed against by a fresh pair of processes."""
    from harness.track.lockstep import Decisive

    if key_s < 0 or total_s < 0:
        raise HarnessError("--key-budget-s and --budget-s are seconds, at least 0")
    return Decisive(threshold, key_s, total_s)


OUTPUT_OPTION = typer.Option(None, "--output", help="Also write the report here, in --format md or json.")


@app.command(rich_help_panel="Track over time")
@user_errors
def compare(
    runs: list[str] = typer.Argument(None, metavar="BASELINE CANDIDATE", help="Two stored runs (folders, ids, 'latest')."),
    threshold: float = typer.Option(None, "--threshold", help="Change that counts as a regression (default 0.05 = 5% timed, 0.005 = 0.5% counted)."),
    memory_threshold: float = typer.Option(0.10, "--memory-threshold", help="Growth of the memory a deployment holds or peaks at (above its process's baseline) that counts as a regression (0.10 = 10%)."),
    series: CompareSeries = typer.Option(CompareSeries.auto, "--series", help="What decides: ms (timed), counted (instructions per inference, both runs made with bench run --counted), or auto (counted where both runs were counted, else ms)."),
    fmt: Fmt = FORMAT_OPTION,
    output: Path = OUTPUT_OPTION,
    interleave: bool = typer.Option(False, "--interleave", hidden=True),
    markdown: Path = typer.Option(None, "--markdown", hidden=True),
    json_out: Path = typer.Option(None, "--json", hidden=True),
) -> None:
    """Compare two stored runs key by key (two lockstep runs by their paired windows); exit 3 when the gate
    cannot judge (a number lost, a job missing, no parity), 1 when a job regressed, 5 when a key stayed
    undecided, 0 otherwise, 2 on bad input. To measure two versions side by side now: `bench ab`."""
    from harness.store.runs import find_run, load_run
    from harness.track.lockstep import stored_pairs

    if interleave:
        raise HarnessError("bench compare --interleave is now bench ab (the same options; sides as --candidate "
                           "python=... / weights=... / env.NAME=...); bench compare compares stored runs")
    fmt, output = _report_target("compare", fmt, output, markdown, json_out)
    if not runs or len(runs) != 2:
        raise HarnessError("bench compare takes two runs: BASELINE CANDIDATE (to measure both now: bench ab)")
    folders = [find_run(r, RESULTS, say=note) for r in runs]
    base, cand = (load_run(f) for f in folders)
    _report(base, cand, threshold, stored_pairs(*folders), fmt, output, memory_threshold, series.value)


@app.command(rich_help_panel="Track over time")
@user_errors
def ab(
    model: list[str] = typer.Option(None, "--model", "-m", help="Models (default: the default sweep's)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backends (default: every available CPU one)."),
    precision: list[str] = typer.Option(None, "--precision", "-p", help="Precisions (default fp32)."),
    threads: int = THREADS_OPTION,
    baseline: list[str] = typer.Option(None, "--baseline", help="The baseline side, KEY=VALUE (repeatable): python=INTERPRETER, weights=CHECKPOINT, env.NAME=VALUE; default: this environment."),
    candidate: list[str] = typer.Option(None, "--candidate", help="The candidate side, as --baseline."),
    pairs: int = typer.Option(20, "--pairs", help="Paired windows per job."),
    window_ms: float = typer.Option(100.0, "--window-ms", help="Length of one window."),
    threshold: float = typer.Option(None, "--threshold", help="Change that counts as a regression (default 0.05 = 5%; 0.005 = 0.5% with --counted)."),
    key_budget_s: float = KEY_BUDGET_OPTION,
    budget_s: float = BUDGET_OPTION,
    counted: bool = typer.Option(False, "--counted", help="Also count each side's work per inference under callgrind and decide on the counts (default threshold 0.5%): a verdict a busy machine cannot move (docs/counted.md)."),
    fmt: Fmt = FORMAT_OPTION,
    output: Path = OUTPUT_OPTION,
    cluster: str = CLUSTER_OPTION,
) -> None:
    """A against B now, in lockstep: both sides resident (each its own interpreter, environment and
    checkpoint), taking turns window by window; the verdict and exit codes of `bench compare`, and both
    sides stored as runs (`bench compare` reads them again later). With --cluster each pair of sides runs on
    a lab's node that has the backend (both sides on one node)."""
    from harness.measure.inputs import Stores
    from harness.measure.planner import jobs as planned
    from harness.measure.planner import protocol_from_options
    from harness.measure.selection import Selection
    from harness.store.runs import default_cache_dir, default_index, new_run_dir
    from harness.track.compare import COUNTED_THRESHOLD, THRESHOLD
    from harness.track.lockstep import Pairing, parse_side, run_lockstep

    fmt, output = _report_target("ab", fmt, output)
    cluster = checked_cluster(cluster)
    if counted:
        from harness.measure.counted import check_counter

        check_counter(resolve_threads(threads), note)
    if threshold is None:
        threshold = COUNTED_THRESHOLD if counted else THRESHOLD
    pairing = Pairing(pairs, window_ms / 1e3, decisive_budget(threshold, key_budget_s, budget_s)).checked()
    jobs = planned(Selection(models=model, backends=backend, precisions=precision, threads=resolve_threads(threads)))
    sides = (parse_side("baseline", baseline), parse_side("candidate", candidate))
    check_side_weights(jobs, {f"--{s.name} weights=": s.weights for s in sides})
    fresh = new_run_dir(RESULTS)
    folder = fresh.with_name("lockstep-" + fresh.name)
    launcher = lab(cluster, None) if cluster else None  # the lab places each pair of sides on a node
    try:
        with err.status("lockstep") as status:
            base, cand, paired = run_lockstep(
                jobs, protocol_from_options(counted=counted), sides, folder, Stores(default_cache_dir(), default_index(RESULTS)),
                pairing,
                progress=lambda j, i, n: status.update(f"{j.model} · {j.backend}: pair {max(i + 1, 0)}/{n}"),
                say=lambda line: err.print(line, markup=False, highlight=False), launcher=launcher)
    finally:
        if launcher is not None:
            launcher.close()
    out.print(f"lockstep runs: {folder}/baseline, {folder}/candidate", markup=False, highlight=False)
    _report(base, cand, threshold, paired, fmt, output, series="counted" if counted else "ms")


def _report_target(command: str, fmt: Fmt, output: Path | None, markdown: Path | None = None,
                   json_out: Path | None = None) -> tuple[Fmt, Path | None]:
    """`--format` and `--output` of a comparison, checked before any work (the old `--markdown F` / `--json F`
    of one release mean `--format md|json --output F`)."""
    from harness.store.runs import check_output_file

    fmt.check(command, Fmt.rich, Fmt.md, Fmt.json)
    for old, path, kind in (("--markdown", markdown, Fmt.md), ("--json", json_out, Fmt.json)):
        if path:
            if output:
                raise HarnessError(f"{old} and --output both name the report file; pass --output once")
            note(f"note: {old} F is now --format {kind.value} --output F")
            fmt, output = kind, path
    if output:
        if fmt is Fmt.rich:
            raise HarnessError("--output writes md or json: add --format md or --format json")
        check_output_file(output, "--output")
    return fmt, output


def _report(base: list, cand: list, threshold: float | None, paired: list | None, fmt: Fmt, output: Path | None,
            memory_threshold: float = 0.10, series: str = "ms") -> None:
    """The comparison on stdout in `fmt` (and into `output`), then its exit code."""
    from harness.store.records import atomic_write_text
    from harness.store.runs import dumps
    from harness.track import compare as cmp

    result = cmp.compare_runs(base, cand, threshold, paired, memory_threshold, series)
    text = {Fmt.md: lambda: cmp.to_markdown(result), Fmt.json: lambda: dumps(result.as_dict())}
    if output:
        atomic_write_text(output, text[fmt]())
    if fmt is Fmt.rich or output:  # with a report file, the terminal gets the table
        _print_comparison(result)
    else:
        out.print(text[fmt](), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)


def check_side_weights(jobs: list, weights: dict[str, str | None]) -> None:
    """A side's checkpoint loads into the model before either side starts, as `run --weights` does, and both
    sides are one network in shape: a missing or mismatched file is one line now, not two error records and a
    gate that cannot judge."""
    from harness.measure.planner import check_same_network

    models = sorted({j.model for j in jobs})
    for option, path in weights.items():
        if path is not None and len(models) != 1:
            raise HarnessError(f"{option} loads one checkpoint: pass exactly one --model with it")
    if any(path is not None for path in weights.values()):
        check_same_network(models[0], weights)


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

    for line in result.memory_regressions:
        out.print(f"MEMORY REGRESSION {line}", markup=False, highlight=False, style="bold red")
    if out.is_terminal and out.width >= WIDE:
        for line in result.undecided_lines():
            out.print(line, markup=False, highlight=False, style="yellow")
        colour = {"slower": "red", "faster": "green", "same": "", "noisy": "yellow"}
        header, rows = table(result)
        styles = ["bold red" if r.regression else colour[r.verdict] for r in result.rows]
        worse = "more work" if result.series == "counted" else "slower"
        out.print(rich_table("baseline vs candidate (regression: CI above the floor and reaching "
                             f"{result.threshold:.1%} {worse})", header, rows, left=(0, len(header) - 1), styles=styles))
    else:  # a CI log or a narrow terminal: every number on a line of its own that fits
        for line in plain_lines(result):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    for label, items in (("only in baseline", result.only_baseline), ("only in candidate", result.only_candidate),
                         ("not comparable", result.not_comparable)):
        for item in items:
            out.print(f"{label}: {item}", markup=False, highlight=False)
    from harness.track.compare import legend

    out.print(f"{legend(result)}.", markup=False, highlight=False, style="dim")
    out.print(f"{result.headline()}. {result.method}.", markup=False, highlight=False, soft_wrap=True)


@app.command(rich_help_panel="Track over time")
@user_errors
def nightly(
    preset: str = PRESET_OPTION,
    threshold: float = typer.Option(None, "--threshold", help="Change that counts as a regression (default 0.05; 0.005 with --counted)."),
    counted: bool = typer.Option(False, "--counted", help="Count each job's work per inference under callgrind too and gate on the counts (docs/counted.md): what a shared runner cannot move."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Models (default: the default sweep's)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backends (default: every available CPU one)."),
    baseline_python: str = typer.Option(None, "--baseline-python", help="Gate in lockstep against this interpreter's environment (shared runners)."),
    baseline_constraints: Path = typer.Option(None, "--baseline-constraints", help="Gate in lockstep against a venv built from this pinned constraints file."),
    key_budget_s: float = KEY_BUDGET_OPTION,
    budget_s: float = BUDGET_OPTION,
    quick: bool = QUICK_ALIAS,
) -> None:
    """Lockstep vs a pinned environment, or the default sweep vs results/baseline; refresh leaderboard and history; exit 1 on a regression, 3 when it cannot judge, 5 when keys stayed undecided."""
    from harness.cli.sweep_progress import StatusLine
    from harness.measure.planner import jobs as planned
    from harness.measure.planner import protocol_from_options
    from harness.measure.selection import Selection
    from harness.track.nightly import run_nightly

    if baseline_python and baseline_constraints:
        raise HarnessError("--baseline-python and --baseline-constraints both name the baseline side; pass one")
    if counted:
        from harness.measure.counted import check_counter

        check_counter(resolve_threads(None), note)
    if baseline_constraints:
        from harness.host.baseline_env import ensure_env
        from harness.store.runs import default_cache_dir

        baseline_python = str(ensure_env(baseline_constraints, default_cache_dir(), say=lambda m: err.print(m, markup=False)))
    cfg = protocol_from_options(preset_of(preset, quick), counted=counted)
    jobs = planned(Selection(models=model, backends=backend, threads=resolve_threads(None)))
    with err.status("nightly") as status:
        result = run_nightly(jobs, cfg, RESULTS, threshold, baseline_python=baseline_python,
                             decisive=decisive_budget(threshold if threshold is not None else 0.05, key_budget_s, budget_s),
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
