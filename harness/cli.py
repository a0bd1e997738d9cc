"""The `bench` command: parses, calls one function, prints. Bad input is one line on stderr, exit 2."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError
from model_zoo.errors import ZooError

RESULTS = Path("results")

app = typer.Typer(help="onebench: one timing protocol for mobile vision backbones on every runtime.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
list_app = typer.Typer(help="List models or backends.", no_args_is_help=True)
app.add_typer(list_app, name="list")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable)


def user_errors(fn: F) -> F:
    """Turn a user-facing error into one line on stderr and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (HarnessError, ZooError) as exc:
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _fmt_m(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}M"


@list_app.command("models")
@user_errors
def list_models(
    names: list[str] = typer.Argument(None, help="Only these models (default: all registered)."),
    count: bool = typer.Option(True, help="Build each model and count params/MACs (slower)."),
) -> None:
    """The registry: our counted params/MACs beside the reference figures."""
    from harness.zoo_listing import model_rows

    table = Table(title="onebench model zoo (fused form, 224x224; * = default sweep)")
    table.add_column("model", no_wrap=True)
    for col in ("params (vs ref)", "MACs", "ref", "Δ", "top-1"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in model_rows(names or None, count=count):
        if r.params is None:
            params = _fmt_int(r.params_ref) + " (ref)"
        elif r.params_ref is None:
            params = _fmt_int(r.params)
        else:
            params = _fmt_int(r.params) + (" ✓" if r.params_match else f" ✗ {_fmt_int(r.params_ref)}")
        delta = "—" if r.macs_rel_err is None else f"{r.macs_rel_err * 100:+.2f}%"
        table.add_row(r.name + (" *" if r.in_mission else ""), params, _fmt_m(r.macs_m), _fmt_m(r.macs_ref_m), delta,
                      "—" if r.top1_ref is None else f"{r.top1_ref:.1f}")
    out.print(table)
    out.print("MACs = torch FlopCounterMode FLOPs / 2; Mobile-Former rows add fvcore's per-element cost of norm and "
              "pooling layers, the convention of its paper. `timm:<name>` builds any timm model.")



@list_app.command("backends")
@user_errors
def list_backends() -> None:
    """Every backend: whether it runs here, and if not, why and the command that fixes it."""
    from harness.backend_listing import backend_rows

    table = Table(title="onebench backends")
    for col in ("backend", "runs here", "version", "why not / install"):
        table.add_column(col, overflow="fold")
    for r in backend_rows():
        table.add_row(r.name, "yes" if r.ok else "no", r.version, "" if r.ok else f"{r.reason}" + (f" — {r.install}" if r.install else ""))
    out.print(table)


class Fmt(str, Enum):
    rich = "rich"
    md = "md"
    csv = "csv"


def _default_threads() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@app.command()
@user_errors
def run(
    model: list[str] = typer.Option(None, "--model", "-m", help="Model name (repeatable); default: the mission's models."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backend (repeatable); default: every available CPU backend."),
    precision: list[str] = typer.Option(None, "--precision", "-p", help="fp32 (default), bf16, fp16 (repeatable)."),
    batch: list[int] = typer.Option(None, "--batch", help="Batch size (repeatable); default 1."),
    threads: int = typer.Option(None, "--threads", help="Threads for every backend; default: physical cores."),
    quick: bool = typer.Option(False, "--quick", help="1 process per job, short windows."),
    precise: bool = typer.Option(False, "--precise", help="7 processes per job, long windows, tight CI."),
    repeats: int = typer.Option(None, "--repeats", help="Processes per job (overrides the preset)."),
    form: str = typer.Option("fused", "--form", help="fused (inference form) or train."),
    device: str = typer.Option("cpu", "--device", help="cpu (GPU and Core ML devices come with their backends)."),
    weights: str = typer.Option(None, "--weights", help="Checkpoint to load (one model only); default: seeded random weights."),
    out_dir: Path = typer.Option(None, "--out", help="Run folder; an existing one is resumed. Default: results/runs/<new id>."),
    fmt: Fmt = typer.Option(Fmt.rich, "--format", help="Leaderboard format printed at the end."),
) -> None:
    """Measure models x backends with the shared protocol; one record per job; then the leaderboard."""
    from harness.leaderboard import to_markdown
    from harness.plan_cli import plan_from_options, protocol_from_options
    from harness.runner import new_run_dir, run_sweep
    from harness.store import default_index
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cfg = protocol_from_options(quick, precise, repeats)
    jobs = plan_from_options(model, backend, precision, batch, threads or _default_threads(), device, form, weights)
    folder = out_dir or new_run_dir(RESULTS)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("jobs", total=len(jobs))

        def progress(job, rec) -> None:
            if rec is None:
                bar.update(task, description=f"{job.model} · {job.backend} · {job.precision}")
            else:
                bar.advance(task)

        records = run_sweep(jobs, cfg, folder, weights=weights, index_db=default_index(RESULTS), progress=progress)
    _print_board(records, fmt)
    for rec in records:
        if rec["status"] != "ok":
            err.print(f"{rec['status']}: {rec['job_id']}: {rec['message']}", markup=False, highlight=False)
    out.print(f"run folder: {folder}", markup=False, highlight=False)


def _print_board(records: list[dict], fmt: Fmt) -> None:
    from harness.leaderboard import LEGEND, as_lists, to_csv, to_markdown

    if fmt is Fmt.md:
        out.print(to_markdown(records), markup=False, highlight=False, soft_wrap=True)
    elif fmt is Fmt.csv:
        sys.stdout.write(to_csv(records))
    else:
        header, body = as_lists(records)
        table = Table(title="onebench leaderboard (latency, ms)")
        for i, col in enumerate(header):
            table.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for row in body:
            table.add_row(*row)
        out.print(table)
        out.print(LEGEND, highlight=False)


@app.command()
@user_errors
def leaderboard(
    runs: list[str] = typer.Argument(None, help="Run folders or ids (default: the latest run)."),
    fmt: Fmt = typer.Option(Fmt.rich, "--format", help="rich (terminal), md (README), csv (one line per job)."),
) -> None:
    """The models x backends table of one or more runs."""
    from harness.store import find_run, load_run

    records = [rec for arg in (runs or ["latest"]) for rec in load_run(find_run(arg, RESULTS))]
    _print_board(records, fmt)


@app.command()
@user_errors
def show(run_arg: str = typer.Argument("latest", metavar="RUN", help="A run folder, run id, record file, or 'latest'.")) -> None:
    """Every job of a run: statistics, spread between processes, cold start, parity, why unstable."""
    from harness.show import job_lines
    from harness.store import find_run, load_run

    path = find_run(run_arg, RESULTS)
    records = load_run(path)
    host = records[0]["host"]
    out.print(f"run {records[0]['run_id']} · {host['cpu']['model']} · {host['cpu']['logical_cores']} cores · "
              f"{host['os']} · commit {(host['project'].get('commit') or '?')[:10]}", markup=False, highlight=False)
    for line in job_lines(records):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
@user_errors
def selfcheck(
    model: str = typer.Option("mobileone_s0", "--model", "-m", help="Model to compare on."),
    threads: int = typer.Option(None, "--threads", help="Threads (default: physical cores)."),
    rounds: int = typer.Option(3, "--rounds", help="Harness/reference alternations."),
    seconds: float = typer.Option(3.0, "--seconds", help="Measuring time per process."),
) -> None:
    """Measure the harness itself: overhead per iteration and agreement with ORT and benchmark_app."""
    from harness.selfcheck import run_selfcheck

    threads = threads or _default_threads()
    with err.status("selfcheck") as status:
        result = run_selfcheck(model, threads, rounds, seconds, progress=lambda m: status.update(f"selfcheck: {m}"))
    out.print(f"harness clock cost inside each sample: {result.empty_step_ns:.0f} ns (p50 of an empty step)", highlight=False)
    out.print(f"harness loop cost per iteration: {result.loop_ns_per_iter:.0f} ns", highlight=False)
    for comp in result.comparisons:
        if comp.skipped:
            out.print(f"{comp.name}: skipped ({comp.skipped})", markup=False, highlight=False)
            continue
        h = ", ".join(f"{v:.3f}" for v in comp.harness_ms)
        r = ", ".join(f"{v:.3f}" for v in comp.reference_ms)
        out.print(f"{comp.name} ({model}, {threads} threads): ratio {comp.ratio:.3f} "
                  f"(harness p50 [{h}] ms, reference [{r}] ms)", markup=False, highlight=False)
        fastest = min(comp.harness_ms)
        out.print(f"    overhead share of this job: {result.empty_step_ns / (fastest * 1e6):.3%}", highlight=False)


index_app = typer.Typer(help="The SQLite index of all runs.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("rebuild")
@user_errors
def index_rebuild(root: Path = typer.Option(RESULTS, "--root", help="Results folder to index.")) -> None:
    """Recreate results/index.sqlite from the JSON records."""
    from harness.store import default_index, rebuild

    count = rebuild(default_index(root), root)
    out.print(f"indexed {count} records into {default_index(root)}", markup=False, highlight=False)


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
