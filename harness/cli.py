"""The `bench` command: parses, calls one function, prints. Failures are one line on stderr (`user_errors`)."""

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
from rich.markup import escape
from rich.table import Table

from harness.errors import HarnessError
from harness.publish.tables import rich_table
from model_zoo.errors import ZooError

RESULTS = Path("results")  # = harness.store.runs.RESULTS_ROOT (not imported: --help stays light)

app = typer.Typer(help="onebench: one timing protocol for mobile vision backbones on every runtime.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
list_app = typer.Typer(help="List models or backends.", no_args_is_help=True)
app.add_typer(list_app, name="list")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable)


EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 2, 4, 130


def _one_line(message: str) -> None:
    err.print(f"error: {message}".splitlines()[0] if message else "error", markup=False, highlight=False, soft_wrap=True)


def user_errors(fn: F) -> F:
    """The one place a command's failure becomes one line on stderr and an exit code (README, "Exit codes"):
    bad input and unreadable or unwritable paths exit 2; anything else is a bug in onebench, exit 4, its
    traceback shown only with ONEBENCH_DEBUG=1; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (HarnessError, ZooError) as exc:
            _one_line(str(exc))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except OSError as exc:  # a path that cannot be read or written: the user's to fix
            where = f" {exc.filename}" if exc.filename else ""
            _one_line(f"cannot use{where}: {exc.strerror or exc}; check the path and its permissions")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            err.print("interrupted (a run folder resumes where it stopped)", markup=False, highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 - never a traceback for a user, but never hidden from a developer
            if os.environ.get("ONEBENCH_DEBUG") or type(exc).__module__.split(".")[0] in ("typer", "click"):
                raise  # typer's own exits and usage errors (typer.Exit is a RuntimeError) pass through
            _one_line(f"onebench failed unexpectedly ({type(exc).__name__}: {exc}); this is a bug: rerun with "
                      "ONEBENCH_DEBUG=1 for the traceback and report it")
            raise typer.Exit(EXIT_BUG) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
@user_errors
def _load_plugins() -> None:
    """Import the modules named in $ONEBENCH_PLUGINS before any command (models and backends they add)."""
    from harness.plugins import load_plugins

    load_plugins()


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
    from harness.listing.models import model_rows

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
    from harness.listing.backends import backend_rows

    table = Table(title="onebench backends")
    for col in ("backend", "runs here", "version", "why not / install"):
        table.add_column(col, overflow="fold")
    for r in backend_rows():
        why = "" if r.ok else r.reason + (f" — {r.install}" if r.install else "")
        table.add_row(r.name, "yes" if r.ok else "converts only" if r.prepares else "no", r.version, escape(why))
    out.print(table)


class Fmt(str, Enum):
    rich = "rich"
    md = "md"
    csv = "csv"


def _threads(value: int | None) -> int:
    """`--threads` checked (1 by default; README, "Threads"); imported late: it loads the zoo."""
    from harness.measure.planner import threads_option

    return threads_option(value)


# The job-selection options `run` and `prepare` share (one definition, one help text).
MODELS_OPTION = typer.Option(None, "--model", "-m", help="Model name (repeatable); default: the mission's models.")
BACKENDS_OPTION = typer.Option(None, "--backend", "-b", help="Backend (repeatable); default: every available CPU backend.")
PRECISIONS_OPTION = typer.Option(None, "--precision", "-p", help="fp32 (default), bf16, fp16 (repeatable).")
BATCHES_OPTION = typer.Option(None, "--batch", help="Batch size (repeatable); default 1.")
FORM_OPTION = typer.Option("fused", "--form", help="fused (inference form) or train.")
DEVICE_OPTION = typer.Option("cpu", "--device", help="cpu or cuda.")
WEIGHTS_OPTION = typer.Option(None, "--weights", help="Checkpoint to load (one model only); default: seeded random weights.")
THREADS_OPTION = typer.Option(None, "--threads", help="Threads for every backend; default 1 (the count that repeats on shared VMs; see README).")
COMPUTE_UNITS_OPTION = typer.Option(None, "--compute-units", help="Core ML: all (default), cpu, cpu-gpu, cpu-ne (repeatable).")
CHANNELS_LAST_OPTION = typer.Option(False, "--channels-last", help="CUDA: run PyTorch backends in NHWC memory format.")


@app.command()
@user_errors
def run(
    model: list[str] = MODELS_OPTION,
    backend: list[str] = BACKENDS_OPTION,
    precision: list[str] = PRECISIONS_OPTION,
    batch: list[int] = BATCHES_OPTION,
    threads: int = THREADS_OPTION,
    quick: bool = typer.Option(False, "--quick", help="1 process per job, short windows."),
    precise: bool = typer.Option(False, "--precise", help="7 processes per job, long windows, tight CI."),
    repeats: int = typer.Option(None, "--repeats", help="Processes per job (overrides the preset)."),
    form: str = FORM_OPTION,
    device: str = DEVICE_OPTION,
    compute_units: list[str] = COMPUTE_UNITS_OPTION,
    channels_last: bool = CHANNELS_LAST_OPTION,
    weights: str = WEIGHTS_OPTION,
    out_dir: Path = typer.Option(None, "--out", help="Run folder; an existing one is resumed. Default: results/runs/<new id>."),
    fmt: Fmt = typer.Option(Fmt.rich, "--format", help="Leaderboard format printed at the end."),
    wait_quiet: float = typer.Option(60.0, "--wait-quiet", help="Seconds to wait for busy neighbours to stop before measuring (then the run is marked)."),
) -> None:
    """Measure models x backends with the shared protocol; one record per job; then the leaderboard."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.measure.planner import plan_from_options, protocol_from_options
    from harness.measure.runner import run_sweep
    from harness.store.runs import default_index, new_run_dir

    if wait_quiet < 0:
        raise HarnessError(f"--wait-quiet is seconds to wait, at least 0, not {wait_quiet:g}")
    cfg = protocol_from_options(quick, precise, repeats)
    jobs = plan_from_options(model, backend, precision, batch, _threads(threads), device, form, weights,
                             compute_units, channels_last)
    folder = out_dir or new_run_dir(RESULTS)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("jobs", total=len(jobs))

        def progress(job, rec) -> None:
            if rec is None:
                bar.update(task, description=f"{job.model} · {job.backend} · {job.precision}")
            else:
                bar.advance(task)

        records = run_sweep(jobs, cfg, folder, weights=weights, index_db=default_index(RESULTS), progress=progress,
                            say=lambda line: bar.console.print(line, markup=False, highlight=False),
                            neighbour_wait_s=wait_quiet)
    _print_board(records, fmt)
    for rec in records:
        if rec["status"] != "ok":
            err.print(f"{rec['status']}: {rec['job_id']}: {rec['message']}", markup=False, highlight=False)
    out.print(f"run folder: {folder}", markup=False, highlight=False)


@app.command()
@user_errors
def prepare(
    model: list[str] = MODELS_OPTION,
    backend: list[str] = BACKENDS_OPTION,
    precision: list[str] = PRECISIONS_OPTION,
    batch: list[int] = BATCHES_OPTION,
    threads: int = THREADS_OPTION,
    form: str = FORM_OPTION,
    device: str = DEVICE_OPTION,
    compute_units: list[str] = COMPUTE_UNITS_OPTION,
    channels_last: bool = CHANNELS_LAST_OPTION,
    weights: str = WEIGHTS_OPTION,
    workers: int = typer.Option(None, "--workers", help="Artifacts built at once; default: half the cores, at most 4."),
) -> None:
    """Build the artifacts `bench run` with the same options will time (exports, compiled packages,
    engines), several at once; nothing is timed, and the run then only loads them."""
    from harness.measure.planner import plan_from_options
    from harness.measure.prepare import default_workers, describe, prepare_artifacts
    from harness.measure.runner import default_cache_dir

    jobs = plan_from_options(model, backend, precision, batch, _threads(threads), device, form, weights,
                             compute_units, channels_last)
    results = prepare_artifacts(jobs, default_cache_dir(), default_workers() if workers is None else workers, weights,
                                done=lambda r: out.print(describe(r), markup=False, highlight=False))
    failed = [r for r in results if r.status == "error"]
    built = sum(r.status in ("built", "ready") for r in results)
    out.print(f"{built} ready, {len(results) - built - len(failed)} skipped, {len(failed)} failed; cache: "
              f"{default_cache_dir()}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
@user_errors
def accuracy(
    model: str = typer.Option(..., "--model", "-m", help="Model name."),
    backend: str = typer.Option("torch", "--backend", "-b", help="Backend whose artifact is evaluated."),
    weights: Path = typer.Option(..., "--weights", help="Trained checkpoint (.pth/.pt/.safetensors)."),
    data: Path = typer.Option(..., "--data", help="ImageFolder of class folders, or a folder of images + labels file."),
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32, bf16 or fp16, as the latency job."),
    device: str = typer.Option("cpu", "--device", help="Device as the latency job: cpu, cuda, or Core ML compute units (all, cpu-ne, ...)."),
    limit: int = typer.Option(None, "--limit", help="Evaluate N images spread evenly over the set."),
    batch: int = typer.Option(1, "--batch", help="Batch of the artifact (1 = the file batch-1 latency jobs time)."),
    threads: int = typer.Option(None, "--threads", help="Threads (default 1, see README)."),
    labels: Path = typer.Option(None, "--labels", help="Labels file for a flat folder ('IMAGE LABEL' lines or LOC_val_solution.csv)."),
    class_map: Path = typer.Option(None, "--class-map", help="Class ids in the model's output order, one per line."),
    num_classes: int = typer.Option(None, "--num-classes", help="Outputs of the model's head (default: the spec's, 1000 for ImageNet)."),
    workers: int = typer.Option(2, "--workers", help="Image-decoding processes (0 = in this process)."),
    root: Path = typer.Option(RESULTS, "--results", help="Results folder; the record goes to RESULTS/accuracy/."),
) -> None:
    """Top-1/top-5 through the backend's own artifact, beside PyTorch fp32 on the same images."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.evaluate import accuracy as acc
    from harness.measure.runner import default_cache_dir, ensure_writable
    from harness.store import accuracy_records

    ensure_writable(root / accuracy_records.ACCURACY_DIR)
    bar = Progress(TextColumn(f"{model} · {backend} · {precision}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task("images", total=None, start=False)

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started:  # shown once images flow: input errors stay one clean line
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        rec = acc.evaluate(model, backend, weights, data, precision=precision, device=device, batch=batch,
                           threads=_threads(threads), limit=limit, labels=labels, class_map=class_map,
                           num_classes=num_classes, workers=workers, cache_dir=default_cache_dir(), progress=progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    path = accuracy_records.save(root, rec)
    ref = rec["reference"]
    out.print(f"{model} · {backend} {precision}: top-1 {rec['top1']:.2%}, top-{rec['k']} {rec['top5']:.2%} on "
              f"{rec['data']['images']} images; PyTorch fp32 {ref['top1']:.2%} / {ref['top5']:.2%} "
              f"(Δ top-1 {rec['delta_top1'] * 100:+.2f} pt, same top-1 prediction on {rec['agreement']:.2%})",
              markup=False, highlight=False)
    out.print(f"artifact: {rec['artifact'].get('path', 'PyTorch module (no file)')}; record: {path}",
              markup=False, highlight=False)


def _print_board(records: list[dict], fmt: Fmt) -> None:
    from harness.publish.leaderboard import LEGEND, as_lists, to_csv, to_markdown
    from harness.store.accuracy_records import load_all

    accuracy = load_all(RESULTS)
    if fmt is Fmt.md:
        out.print(to_markdown(records, accuracy), markup=False, highlight=False, soft_wrap=True)
    elif fmt is Fmt.csv:
        sys.stdout.write(to_csv(records, accuracy))
    else:
        out.print(rich_table("onebench leaderboard (latency, ms)", *as_lists(records, accuracy)))
        out.print(LEGEND, highlight=False)


@app.command()
@user_errors
def leaderboard(
    runs: list[str] = typer.Argument(None, help="Run folders or ids (default: the latest run)."),
    fmt: Fmt = typer.Option(Fmt.rich, "--format", help="rich (terminal), md (README), csv (one line per job)."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="Write md (with its plots, PNG and SVG, in a plots/ folder beside it) or csv."),
    html_dir: Path = typer.Option(None, "--html", help="Write a static site (index.html, plots, raw records) here."),
) -> None:
    """The models x backends table of one or more runs, with top-1 and accuracy-vs-latency plots."""
    from harness.publish.leaderboard import to_csv
    from harness.publish.site import write_markdown, write_site
    from harness.store.accuracy_records import load_all
    from harness.store.records import atomic_write_text
    from harness.store.runs import find_run, load_run

    if output and fmt is Fmt.rich:
        raise HarnessError("--output writes md or csv: add --format md or --format csv")
    records = [rec for arg in (runs or ["latest"]) for rec in load_run(find_run(arg, RESULTS))]
    measured = load_all(RESULTS)
    if html_dir:
        page = write_site(records, measured, html_dir)
        out.print(f"site: {page} (open it in a browser; it works offline)", markup=False, highlight=False)
    if output:
        if fmt is Fmt.md:
            write_markdown(records, measured, output)
        else:
            atomic_write_text(output, to_csv(records, measured))
    if not html_dir and not output:
        _print_board(records, fmt)


@app.command()
@user_errors
def export(
    backend: str = typer.Option(..., "--backend", "-b", help="coreml (the one backend with a device bundle)."),
    bundle: Path = typer.Option(..., "--bundle", help="Folder to write (replaced if it is an earlier bundle)."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Models (repeatable); default: the mission's."),
    precision: list[str] = typer.Option(None, "--precision", "-p", help="Core ML: fp16 (default) and/or fp32."),
    compute_units: list[str] = COMPUTE_UNITS_OPTION,
    weights: str = typer.Option(None, "--weights", help="Checkpoint (one model only); default: the sweep's seeded weights."),
    quick: bool = typer.Option(False, "--quick", help="The quick protocol preset."),
    precise: bool = typer.Option(False, "--precise", help="The precise protocol preset."),
) -> None:
    """Write a device bundle (packages, protocol rules, manifest) for the iPhone runner in runners/ios."""
    import model_zoo
    from harness.device.bundle import export_bundle
    from harness.measure.planner import protocol_from_options
    from harness.measure.runner import default_cache_dir

    with err.status("converting"):
        manifest, jobs = export_bundle(backend, model or model_zoo.mission_models(), precision, compute_units, bundle,
                                       protocol_from_options(quick, precise, None), default_cache_dir(), weights)
    out.print(f"bundle: {manifest.parent} ({jobs} jobs); run it with the Swift runner (README: 'Core ML on an "
              "iPhone'), then `bench ingest RESULTS.json`", markup=False, highlight=False)


@app.command()
@user_errors
def ingest(file: Path = typer.Argument(..., help="A results file written by the device runner.")) -> None:
    """Validate device results and store them as a run (they then join leaderboards and comparisons)."""
    from harness.device.ingest import ingest as ingest_file

    folder = ingest_file(file, RESULTS)
    out.print(f"run folder: {folder}", markup=False, highlight=False)


@app.command()
@user_errors
def show(run_arg: str = typer.Argument("latest", metavar="RUN", help="A run folder, run id, record file, or 'latest'.")) -> None:
    """Every job of a run: statistics, spread between processes, cold start, parity, why unstable."""
    from harness.publish.show import job_lines
    from harness.store.runs import find_run, load_run

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
    threads: int = typer.Option(None, "--threads", help="Threads (default 1, see README)."),
    rounds: int = typer.Option(12, "--rounds", help="Paired rounds per reference (harness, reference alternating)."),
    seconds: float = typer.Option(0.5, "--seconds", help="Measuring time per side and round."),
) -> None:
    """Measure the harness itself: overhead per iteration and agreement with ORT and benchmark_app."""
    import numpy as np

    from harness.track.selfcheck import run_selfcheck

    threads = _threads(threads)
    with err.status("selfcheck") as status:
        result = run_selfcheck(model, threads, rounds, seconds, progress=lambda m: status.update(f"selfcheck: {m}"))
    out.print(f"harness clock cost inside each sample: {result.empty_step_ns:.0f} ns (p50 of an empty step)", highlight=False)
    out.print(f"harness loop cost per iteration: {result.loop_ns_per_iter:.0f} ns", highlight=False)
    for comp in result.comparisons:
        if comp.skipped:
            out.print(f"{comp.name}: skipped ({comp.skipped})", markup=False, highlight=False)
            continue
        lo, hi = comp.ci
        out.print(f"{comp.name} ({model}, {threads} threads): median paired ratio {comp.ratio:.3f} "
                  f"[95% CI {lo:.3f}-{hi:.3f}] over {len(comp.harness_ms)} rounds (harness median "
                  f"{np.median(comp.harness_ms):.3f} ms, reference {np.median(comp.reference_ms):.3f} ms)",
                  markup=False, highlight=False)
        out.print(f"    overhead share of this job: {result.empty_step_ns / (min(comp.harness_ms) * 1e6):.3%}", highlight=False)


class CompareFmt(str, Enum):
    rich = "rich"
    md = "md"
    json = "json"


@app.command()
@user_errors
def compare(
    runs: list[str] = typer.Argument(None, metavar="BASELINE CANDIDATE",
                                     help="Two runs (folders, ids, 'latest'); not with --interleave."),
    threshold: float = typer.Option(0.05, "--threshold", help="Slowdown that counts as a regression (0.05 = 5%)."),
    fmt: CompareFmt = typer.Option(CompareFmt.rich, "--format", help="rich, md (a CI comment) or json."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the Markdown report here."),
    json_out: Path = typer.Option(None, "--json", help="Also write the JSON report here."),
    interleave: bool = typer.Option(False, "--interleave", help="Re-measure both sides now in lockstep: both resident, taking turns in short windows."),
    pairs: int = typer.Option(20, "--pairs", help="--interleave: paired windows per job."),
    window_ms: float = typer.Option(100.0, "--window-ms", help="--interleave: length of one window."),
    model: list[str] = typer.Option(None, "--model", "-m", help="--interleave: models (default: the mission's)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="--interleave: backends."),
    precision: list[str] = typer.Option(None, "--precision", "-p", help="--interleave: precisions."),
    threads: int = typer.Option(None, "--threads", help="--interleave: threads."),
    baseline_python: str = typer.Option(sys.executable, "--baseline-python", help="--interleave: baseline interpreter."),
    candidate_python: str = typer.Option(sys.executable, "--candidate-python", help="--interleave: candidate interpreter."),
    baseline_env: list[str] = typer.Option(None, "--baseline-env", help="--interleave: KEY=VALUE for the baseline."),
    candidate_env: list[str] = typer.Option(None, "--candidate-env", help="--interleave: KEY=VALUE for the candidate."),
    baseline_weights: str = typer.Option(None, "--baseline-weights", help="--interleave: checkpoint for the baseline."),
    candidate_weights: str = typer.Option(None, "--candidate-weights", help="--interleave: checkpoint for the candidate."),
) -> None:
    """Compare two runs key by key; exit 3 when the candidate lost a number the baseline had (error,
    skipped, failed parity), 1 when a job regressed, 0 otherwise, 2 on bad input."""
    from harness.store.runs import find_run, load_run
    from harness.track import compare as cmp

    if interleave:
        if runs:
            raise HarnessError("--interleave measures both sides now: pass models and backends, not run folders")
        from harness.measure.planner import plan_from_options, protocol_from_options
        from harness.measure.runner import default_cache_dir
        from harness.store.runs import default_index, new_run_dir
        from harness.track.lockstep import Side, parse_env, run_lockstep

        cfg = protocol_from_options(False, False, None)
        jobs = plan_from_options(model, backend, precision, None, _threads(threads), "cpu", "fused", None)
        sides = (Side("baseline", baseline_python, parse_env(baseline_env), baseline_weights),
                 Side("candidate", candidate_python, parse_env(candidate_env), candidate_weights))
        fresh = new_run_dir(RESULTS)
        folder = fresh.with_name("lockstep-" + fresh.name)
        with err.status("lockstep") as status:
            base, cand, paired = run_lockstep(
                jobs, cfg, sides, folder, default_cache_dir(), pairs, window_ms / 1e3,
                progress=lambda j, i, n: status.update(f"{j.model} · {j.backend}: pair {max(i + 1, 0)}/{n}"),
                index_db=default_index(RESULTS), say=lambda line: err.print(line, markup=False, highlight=False))
        out.print(f"lockstep runs: {folder}/baseline, {folder}/candidate", markup=False, highlight=False)
    else:
        if not runs or len(runs) != 2:
            raise HarnessError("bench compare takes two runs: BASELINE CANDIDATE (or --interleave)")
        base, cand = (load_run(find_run(r, RESULTS)) for r in runs)
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
    if fmt is CompareFmt.md:
        out.print(report, markup=False, highlight=False, soft_wrap=True)
    elif fmt is CompareFmt.json:
        from harness.store.runs import dumps

        sys.stdout.write(dumps(result.as_dict()) + "\n")
    else:
        _print_comparison(result)
    raise typer.Exit(result.exit_code)


def _print_comparison(result) -> None:
    if result.broken:
        out.print(f"[bold red]{escape(result.headline())}[/]")
        for item in result.broken:
            out.print(f"  {item}", markup=False, highlight=False)
    if result.different_machines:
        out.print("[bold red]DIFFERENT MACHINES: not comparable as a regression test[/]")
    for line in result.environment:
        out.print(f"[yellow]environment:[/] {line}", highlight=False)
    from harness.track.compare import table

    colour = {"slower": "red", "faster": "green", "same": "", "noisy": "yellow"}
    header, rows = table(result)
    styles = ["bold red" if r.regression else colour[r.verdict] for r in result.rows]
    out.print(rich_table("baseline vs candidate (regression: CI above the floor and reaching "
                         f"{result.threshold:.0%} slower)", header, rows, left=(0, len(header) - 1), styles=styles))
    for label, items in (("only in baseline", result.only_baseline), ("only in candidate", result.only_candidate),
                         ("not comparable", result.not_comparable)):
        for item in items:
            out.print(f"{label}: {item}", markup=False, highlight=False)
    out.print(f"{result.headline()}. {result.method}.", markup=False, highlight=False)


@app.command()
@user_errors
def history(
    model: str = typer.Option(None, "--model", "-m"),
    backend: str = typer.Option(None, "--backend", "-b"),
    precision: str = typer.Option(None, "--precision", "-p"),
    plot: Path = typer.Option(None, "--plot", help="Write a plot (.png or .svg)."),
) -> None:
    """p50 per job over every indexed run, with detected steps (change points)."""
    from harness.store.runs import default_index
    from harness.track.history import load_series
    from harness.track.history import plot as draw

    series = load_series(default_index(RESULTS), model=model, backend=backend, precision=precision)
    for s in series:
        pts = " ".join(f"{p.p50_ms:.2f}{'~' if p.unstable else ''}" for p in s.points)
        out.print(f"{s.label}: {pts} ms", markup=False, highlight=False)
        for st in s.steps:
            out.print(f"    step {st.size:+.1%} at run {st.run_id} (commit {(st.commit or '?')[:10]})",
                      markup=False, highlight=False)
    if plot:
        out.print(f"plot: {draw(series, plot)}", markup=False, highlight=False)


@app.command()
@user_errors
def nightly(
    quick: bool = typer.Option(False, "--quick", help="1 process per job (smoke test of the gate, not a gate)."),
    threshold: float = typer.Option(0.05, "--threshold", help="Slowdown that counts as a regression."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Models (default: the mission's)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backends (default: every available CPU one)."),
    baseline_python: str = typer.Option(None, "--baseline-python", help="Gate in lockstep against this interpreter's environment (shared runners)."),
    baseline_constraints: Path = typer.Option(None, "--baseline-constraints", help="Gate in lockstep against a venv built from this pinned constraints file."),
) -> None:
    """Default sweep vs results/baseline, or lockstep vs a pinned environment; refresh leaderboard and history; exit 1 on a regression, 3 when a job lost its number."""
    from harness.measure.planner import plan_from_options, protocol_from_options
    from harness.track.nightly import run_nightly

    if baseline_python and baseline_constraints:
        raise HarnessError("--baseline-python and --baseline-constraints both name the baseline side; pass one")
    if baseline_constraints:
        from harness.host.baseline_env import ensure_env
        from harness.measure.runner import default_cache_dir

        baseline_python = str(ensure_env(baseline_constraints, default_cache_dir(), say=lambda m: err.print(m, markup=False)))
    cfg = protocol_from_options(quick, False, None)
    jobs = plan_from_options(model, backend, None, None, _threads(None), "cpu", "fused", None)
    with err.status("nightly") as status:
        result = run_nightly(jobs, cfg, RESULTS, threshold, baseline_python=baseline_python,
                             progress=lambda j, r: r is None and status.update(f"nightly: {j.model} · {j.backend}"),
                             say=lambda line: err.print(line, markup=False, highlight=False))
    if result.comparison:
        _print_comparison(result.comparison)
    for note in result.notes:
        out.print(note, markup=False, highlight=False)
    out.print(f"run folder: {result.run_dir}", markup=False, highlight=False)
    raise typer.Exit(result.exit_code)


@app.command()
@user_errors
def ablation(
    kind: str = typer.Argument(..., help="activations (the paper's Table 2) or blocks (skip / SE, Table 3)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backends (default: every available CPU one)."),
    threads: int = THREADS_OPTION,
    quick: bool = typer.Option(False, "--quick"),
    precise: bool = typer.Option(False, "--precise"),
    out_dir: Path = typer.Option(None, "--out", help="Run folder (resumed if it exists)."),
    fmt: Fmt = typer.Option(Fmt.rich, "--format", help="rich or md."),
) -> None:
    """Time the paper's 30-layer ablation networks per activation or block type, relative to the baseline."""
    from harness.measure.planner import plan_from_options, protocol_from_options
    from harness.measure.runner import run_sweep
    from harness.publish import ablation as abl
    from harness.store.runs import default_index, new_run_dir

    prefix, names, _ = abl.kind_info(kind)
    cfg = protocol_from_options(quick, precise, None)
    jobs = plan_from_options([f"ablation_{prefix}_{n}" for n in names], backend, None, None,
                             _threads(threads), "cpu", "fused", None)
    folder = out_dir or new_run_dir(RESULTS, prefix=f"ablation-{kind}-")
    with err.status(f"ablation {kind}") as status:
        records = run_sweep(jobs, cfg, folder, index_db=default_index(RESULTS),
                            progress=lambda j, r: r is None and status.update(f"ablation: {j.model} · {j.backend}"))
    if fmt is Fmt.md:
        out.print(abl.to_markdown(kind, records), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(rich_table(f"ablation: {kind} (p50 ms ± CI, × vs {abl.KINDS[kind][2]})", *abl.table(kind, records)))
    for rec in records:
        if rec["status"] != "ok":
            err.print(f"{rec['status']}: {rec['job_id']}: {rec['message']}", markup=False, highlight=False)
    out.print(f"run folder: {folder}", markup=False, highlight=False)


baseline_app = typer.Typer(help="The committed baseline that nightly runs compare against.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("set")
@user_errors
def baseline_set(run_arg: str = typer.Argument(..., metavar="RUN")) -> None:
    """Make RUN the baseline: copy its run.json and records to results/baseline/ (replacing it)."""
    from harness.store.runs import find_run, set_baseline

    target = set_baseline(find_run(run_arg, RESULTS), RESULTS / "baseline")
    out.print(f"baseline: {target} (commit it to make it the nightly reference)", markup=False, highlight=False)


index_app = typer.Typer(help="The SQLite index of all runs.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("rebuild")
@user_errors
def index_rebuild(root: Path = typer.Option(RESULTS, "--root", help="Results folder to index.")) -> None:
    """Recreate results/index.sqlite from the JSON records."""
    from harness.store.runs import default_index, rebuild

    count = rebuild(default_index(root), root)
    out.print(f"indexed {count} records into {default_index(root)}", markup=False, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
