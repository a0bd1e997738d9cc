"""The reporting commands: `bench leaderboard`, `show`, `history`, `reindex`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from harness.cli.common import (
    FORMAT_OPTION,
    RESULTS,
    Fmt,
    app,
    flag,
    note,
    out,
    print_board,
    user_errors,
)
from harness.errors import HarnessError


class Series(str, Enum):
    relative = "relative"
    ms = "ms"
    counted = "counted"
    gate = "gate"


@app.command(rich_help_panel="Report")
@user_errors
def leaderboard(
    runs: list[str] = typer.Argument(None, help="Run folders or ids (default: the latest run)."),
    fmt: Fmt = FORMAT_OPTION,
    output: Path = typer.Option(None, "--output",
                                help="Write md (with its plots, PNG and SVG, in a plots/ folder beside it) or csv."),
    html_dir: Path = typer.Option(None, "--html", help="Write a static site (index.html, plots, raw records) here."),
    relative: bool = flag(False, "--relative", help="Cells show each job's time over its pinned reference's (the figure that repeats on a shared host), the reference named in the caption; rich and md."),
) -> None:
    """The models x backends table of one or more runs, with top-1 and accuracy-vs-latency plots."""
    from harness.publish.leaderboard import to_csv
    from harness.publish.site import write_markdown, write_site
    from harness.store import profile_records
    from harness.store.accuracy_records import load_all
    from harness.store.records import atomic_write_text
    from harness.store.runs import find_run, load_run

    fmt.check("leaderboard", Fmt.rich, Fmt.md, Fmt.csv)
    if output and fmt is Fmt.rich:
        raise HarnessError("--output writes md or csv: add --format md or --format csv")
    figure = "relative" if relative else "ms"
    if relative and (html_dir or fmt is Fmt.csv):
        raise HarnessError("--relative changes the table (rich or md); csv always has the relative columns and the site shows milliseconds")
    from harness.store.runs import check_output, check_output_file

    if output:
        check_output_file(output, "--output")
    if html_dir:
        check_output(html_dir, "--html")
    folders = [find_run(arg, RESULTS, say=note) for arg in (runs or ["latest"])]
    records = [rec for folder in folders for rec in load_run(folder)]
    measured = load_all(RESULTS)
    if html_dir:
        profiles = [rec for folder in folders if folder.is_dir() for rec in profile_records.load_all(folder)]
        page = write_site(records, measured, html_dir, profiles)
        out.print(f"site: {page} (open it in a browser; it works offline)", markup=False, highlight=False)
    if output:
        if fmt is Fmt.md:
            write_markdown(records, measured, output, figure)
            out.print(f"wrote {output} (its plots in {output.parent / 'plots'})", markup=False, highlight=False)
        else:
            atomic_write_text(output, to_csv(records, measured))
            out.print(f"wrote {output}", markup=False, highlight=False)
    if not html_dir and not output:
        print_board(records, fmt, figure)


@app.command(rich_help_panel="Report")
@user_errors
def show(run_arg: str = typer.Argument("latest", metavar="RUN", help="A run folder, run id, record or profile file, or 'latest'.")) -> None:
    """Every job of a run: statistics, spread between processes, cold start, parity, why unstable; then its
    profiles (`bench profile`): where the time went, by op kind."""
    from harness.publish.profile import show_lines
    from harness.publish.show import job_lines
    from harness.store import profile_records
    from harness.store.records import read_json
    from harness.store.runs import find_run, load_run

    path = find_run(run_arg, RESULTS, say=note)
    if path.is_file() and isinstance(data := read_json(path), dict) and data.get("kind") == "profile":
        profiles, records = [profile_records.read(path)], []
    else:
        profiles = profile_records.load_all(path) if path.is_dir() else []
        has_records = path.is_file() or any((path / "records").glob("*.json"))
        records = load_run(path) if has_records or not profiles else []
    if records:
        host = records[0].host
        out.print(f"run {records[0].run_id} · {host['cpu']['model']} · {host['cpu']['logical_cores']} cores · "
                  f"{host['os']} · commit {(host['project'].get('commit') or '?')[:10]}", markup=False, highlight=False)
    for line in job_lines(records) + [line for rec in profiles for line in show_lines(rec)]:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command(rich_help_panel="Report")
@user_errors
def history(
    model: str = typer.Option(None, "--model", "-m"),
    backend: str = typer.Option(None, "--backend", "-b"),
    precision: str = typer.Option(None, "--precision", "-p"),
    preset: str = typer.Option(None, "--preset", help="Only runs of this protocol preset (quick, default, precise)."),
    plot: Path = typer.Option(None, "--plot", help="Write a plot (.png or .svg)."),
    series_of: Series = typer.Option(Series.relative, "--series", help="relative: each job's time over its pinned reference's (milliseconds where a job has none); ms: milliseconds; counted: instructions per inference of counted runs (bench run --counted); gate: the nightly gate's lockstep ratio against the pinned environment, per night."),
    gate: bool = typer.Option(False, "--gate", hidden=True),
    ms: bool = typer.Option(False, "--ms", hidden=True),
) -> None:
    """Each job's figure over every indexed run, one series per preset and reference (or the nightly gate's
    lockstep ratios), with detected steps (change points)."""
    from harness.store.runs import check_output_file, default_index
    from harness.track.history import gate_series, lines, load_series
    from harness.track.history import plot as draw

    if gate or ms:
        if gate and ms:
            raise HarnessError("--gate and --ms are two series; pass --series gate or --series ms")
        old = Series.gate if gate else Series.ms
        note(f"note: --{old.value} is now --series {old.value}")
        series_of = old
    if plot:
        check_output_file(plot, "--plot")
    if series_of is Series.gate:
        series = [s for s in gate_series(RESULTS) if (not model or s.key["model"] == model)
                  and (not backend or s.key["backend"] == backend) and (not precision or s.key["precision"] == precision)]
    else:
        series = load_series(default_index(RESULTS), series_of.value, model=model, backend=backend,
                             precision=precision, preset=preset)
    for s in series:
        for line in lines(s):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    if plot:
        out.print(f"plot: {draw(series, plot)}", markup=False, highlight=False)


@app.command(rich_help_panel="Report")
@user_errors
def reindex(results: Path = typer.Option(RESULTS, "--results", help="Results folder to index.")) -> None:
    """Recreate RESULTS/index.sqlite from the JSON records."""
    from harness.store.runs import default_index, rebuild

    count = rebuild(default_index(results), results, say=note)
    out.print(f"indexed {count} records into {default_index(results)}", markup=False, highlight=False)


index_app = typer.Typer(help="Old spelling of `bench reindex`.", no_args_is_help=True, hidden=True)
app.add_typer(index_app, name="index")


@index_app.command("rebuild")
@user_errors
def index_rebuild(root: Path = typer.Option(RESULTS, "--root", "--results")) -> None:
    """Old spelling of `bench reindex` (one release)."""
    note("note: bench index rebuild is now bench reindex")
    reindex(root)
