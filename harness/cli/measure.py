"""The measuring commands: `bench run`, `prepare`, `accuracy`, `int8`, `selfcheck`, `ablation`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harness.cli.common import (
    BACKEND_OPTIONS_OPTION,
    BACKENDS_OPTION,
    BATCHES_OPTION,
    CALIBRATION_OPTION,
    CALIBRATION_SIZE_OPTION,
    CHANNELS_LAST_OPTION,
    CLUSTER_OPTION,
    COMPUTE_UNITS_OPTION,
    DEVICE_OPTION,
    EXIT_BUG,
    EXIT_NOTHING_MEASURED,
    FORM_OPTION,
    FORMAT_OPTION,
    INPUT_SIZE_OPTION,
    MODELS_OPTION,
    PRECISE_ALIAS,
    PRECISIONS_OPTION,
    PRESET_OPTION,
    QUICK_ALIAS,
    RESULTS,
    RUN_DEVICE_OPTION,
    THREADS_OPTION,
    WEIGHTS_OPTION,
    Fmt,
    Progress,
    app,
    checked_cluster,
    err,
    flag,
    lab,
    note,
    out,
    preset_of,
    print_board,
    progress_of,
    resolve_threads,
    user_errors,
)
from harness.errors import HarnessError
from harness.publish.tables import rich_table

if TYPE_CHECKING:
    from harness.store.record import Record


@app.command(rich_help_panel="Measure")
@user_errors
def run(
    model: list[str] = MODELS_OPTION,
    backend: list[str] = BACKENDS_OPTION,
    precision: list[str] = PRECISIONS_OPTION,
    batch: list[int] = BATCHES_OPTION,
    threads: int = THREADS_OPTION,
    preset: str = PRESET_OPTION,
    repeats: int = typer.Option(None, "--repeats", help="Processes per job (overrides the preset)."),
    counted: bool = flag(False, "--counted", help="Also count each CPU job's work per inference under valgrind's callgrind (instructions, simulated cache misses, estimated cycles on a fixed simulated CPU): a figure that repeats on a busy machine (docs/counted.md). Needs valgrind and pytest-codspeed."),
    ci_target: float = typer.Option(None, "--ci-target", help="The p50's 95% CI half-width to aim at, a fraction (0.01 = ±1%, the default preset's; overrides the preset). A wider one stops sooner."),
    form: str = FORM_OPTION,
    device: str = RUN_DEVICE_OPTION,
    compute_units: list[str] = COMPUTE_UNITS_OPTION,
    channels_last: bool = CHANNELS_LAST_OPTION,
    weights: str = WEIGHTS_OPTION,
    input_size: int = INPUT_SIZE_OPTION,
    options: list[str] = BACKEND_OPTIONS_OPTION,
    calibration: str = CALIBRATION_OPTION,
    calibration_size: int = CALIBRATION_SIZE_OPTION,
    out_dir: Path = typer.Option(None, "--out", help="Run folder; an existing one is resumed. Default: results/runs/<new id>."),
    fmt: Fmt = FORMAT_OPTION,
    wait_quiet: float = typer.Option(60.0, "--wait-quiet", envvar="ONEBENCH_WAIT_QUIET", help="Seconds to wait for busy neighbours to stop before measuring (then the run is marked)."),
    progress: Progress = typer.Option(Progress.rich, "--progress", help="rich (lines as it goes), quiet (only the summary) or json (JSON lines on stderr, for CI logs)."),
    cluster: str = CLUSTER_OPTION,
    machine: list[str] = typer.Option(None, "--machine", help="With --cluster: only nodes whose labels match KEY=VALUE (machine=lab-3, gpu=in(H200,A100), os=!darwin; repeatable, all hold)."),
    reference: str = typer.Option("auto", "--reference", help="Pinned workload each CPU job takes turns with, for its relative figure: auto (ONNX Runtime MobileOne-S0, chosen by measurement; conv-dense without ONNX Runtime), none (no relative figure; a default sweep took 2 min 45 s instead of ~5 min here), or a name (docs/protocol.md: 'Relative figures')."),
    quick: bool = QUICK_ALIAS,
    precise: bool = PRECISE_ALIAS,
    quiet: bool = typer.Option(False, "--quiet", "-q", hidden=True),
    json_progress: bool = typer.Option(False, "--json-progress", hidden=True),
) -> None:
    """Measure models x backends with the shared protocol; one record per job; then the leaderboard."""
    import contextlib
    import time

    from harness.cli.sweep_progress import ConsoleSweep, JsonSweep, summary
    from harness.measure.inputs import Inputs, Stores
    from harness.measure.planner import calibration_from_options, protocol_from_options
    from harness.measure.planner import jobs as planned
    from harness.measure.runner import SweepListener, run_sweep
    from harness.measure.selection import Selection
    from harness.store.runs import check_output, default_index, new_run_dir

    if wait_quiet < 0:
        raise HarnessError(f"--wait-quiet is seconds to wait, at least 0, not {wait_quiet:g}")
    cluster = checked_cluster(cluster)
    if machine and not cluster:
        raise HarnessError("--machine chooses among a cluster's nodes: add --cluster HEAD")
    fmt.check("run", Fmt.rich, Fmt.md, Fmt.csv)
    progress = progress_of(progress, quiet, json_progress)
    cfg = protocol_from_options(preset_of(preset, quick, precise), repeats, reference, ci_target, counted)
    if counted and not cluster:  # on a lab, each node checks its own valgrind (a job it cannot count says why)
        from harness.measure.counted import check_counter

        check_counter(resolve_threads(threads), note)
    launcher = lab(cluster, machine) if cluster else None
    try:
        chosen = Selection(models=model, backends=backend, precisions=precision, batches=batch, threads=resolve_threads(threads),
                           device=device, form=form, channels_last=channels_last, options=options, weights=weights,
                           compute_units=compute_units, input_size=input_size, calibration=calibration,
                           calibration_size=calibration_size)
        jobs = planned(chosen, offered=launcher.offered() if launcher else None)
        calibrations = calibration_from_options(jobs, chosen, note)
        folder = out_dir or new_run_dir(RESULTS)
        check_output(folder, "--out")
        listener: SweepListener = (JsonSweep(err) if progress is Progress.json else SweepListener()
                                   if progress is Progress.quiet else ConsoleSweep(err, folder))
        started = time.monotonic()
        with listener if isinstance(listener, ConsoleSweep) else contextlib.nullcontext():
            say = listener.line if isinstance(listener, ConsoleSweep) else note
            if launcher:
                launcher.say = say
            records = run_sweep(jobs, cfg, folder, inputs=Inputs(weights, calibrations), stores=Stores(index_db=default_index(RESULTS)),
                                listener=listener, say=say, neighbour_wait_s=wait_quiet, launcher=launcher)
    finally:
        if launcher:
            launcher.close()
    print_board(records, fmt)
    note(summary(records, time.monotonic() - started))
    print_outcome(records, folder)


@app.command(rich_help_panel="Measure")
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
    options: list[str] = BACKEND_OPTIONS_OPTION,
    calibration: str = CALIBRATION_OPTION,
    calibration_size: int = CALIBRATION_SIZE_OPTION,
    workers: int = typer.Option(None, "--workers", help="Artifacts built at once; default: half the cores, at most 4."),
) -> None:
    """Build the artifacts `bench run` with the same options will time (exports, compiled packages,
    engines), several at once; nothing is timed, and the run then only loads them."""
    from harness.measure.planner import calibration_from_options
    from harness.measure.planner import jobs as planned
    from harness.measure.prepare import default_workers, describe, prepare_artifacts
    from harness.measure.selection import Selection
    from harness.store.runs import default_cache_dir

    chosen = Selection(models=model, backends=backend, precisions=precision, batches=batch, threads=resolve_threads(threads),
                       device=device, form=form, channels_last=channels_last, options=options, weights=weights,
                       compute_units=compute_units, calibration=calibration, calibration_size=calibration_size)
    jobs = planned(chosen)
    calibrations = calibration_from_options(jobs, chosen, note)
    results = prepare_artifacts(jobs, default_cache_dir(), default_workers() if workers is None else workers, weights,
                                calibration=calibrations, done=lambda r: out.print(describe(r), markup=False, highlight=False))
    failed = [r for r in results if r.status == "error"]
    built = sum(r.status in ("built", "ready") for r in results)
    out.print(f"{built} ready, {len(results) - built - len(failed)} skipped, {len(failed)} failed; cache: "
              f"{default_cache_dir()}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command(rich_help_panel="Measure")
@user_errors
def accuracy(
    model: str = typer.Option(..., "--model", "-m", help="Model name."),
    backend: str = typer.Option("torch", "--backend", "-b", help="Backend whose artifact is evaluated."),
    weights: Path = typer.Option(..., "--weights", help="Trained checkpoint (.pth/.pt/.safetensors)."),
    data: Path = typer.Option(..., "--data", help="ImageFolder of class folders, or a folder of images + labels file."),
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32, bf16, fp16 or int8, as the latency job."),
    device: str = typer.Option("cpu", "--device", help="Device as the latency job: cpu, cuda, or Core ML compute units (all, cpu-ne, ...)."),
    limit: int = typer.Option(None, "--limit", help="Evaluate N images spread evenly over the set."),
    batch: int = typer.Option(1, "--batch", help="Batch of the artifact (1 = the file batch-1 latency jobs time)."),
    threads: int = typer.Option(None, "--threads", help="Threads (default 1, see docs/protocol.md)."),
    labels: Path = typer.Option(None, "--labels", help="Labels file for a flat folder ('IMAGE LABEL' lines or LOC_val_solution.csv)."),
    class_map: Path = typer.Option(None, "--class-map", help="Class ids in the model's output order, one per line."),
    num_classes: int = typer.Option(None, "--num-classes", help="Outputs of the model's head (default: the spec's, 1000 for ImageNet)."),
    workers: int = typer.Option(2, "--workers", help="Image-decoding processes (0 = in this process)."),
    root: Path = typer.Option(RESULTS, "--results", help="Results folder; the record goes to RESULTS/accuracy/."),
    options: list[str] = BACKEND_OPTIONS_OPTION,
    calibration: str = CALIBRATION_OPTION,
    calibration_size: int = CALIBRATION_SIZE_OPTION,
    layers: bool = flag(False, "--layers", help="int8: each layer's int8 output against fp32 on calibration inputs "
                        "(SQNR in dB, the module's name), the worst first; kept in the record."),
    input_size: int = INPUT_SIZE_OPTION,
    cluster: str = CLUSTER_OPTION,
) -> None:
    """Top-1/top-5 through the backend's own artifact, beside PyTorch fp32 on the same images (with --cluster,
    on a lab's node that has the backend: the images' path must be there too)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.evaluate import accuracy as acc
    from harness.evaluate.paired import describe as describe_paired
    from harness.measure.selection import Selection
    from harness.store import accuracy_records
    from harness.store.runs import check_output, default_cache_dir

    check_output(root / accuracy_records.ACCURACY_DIR, "--results")
    cluster = checked_cluster(cluster)
    bar = Progress(TextColumn(f"{model} · {backend} · {precision}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task("images", total=None, start=False)

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started:  # shown once images flow: input errors stay one clean line
            bar.start()
        bar.update(task, completed=done, total=total)

    launcher = None
    try:
        chosen = Selection(models=(model,), backends=(backend,), precisions=(precision,), batches=(batch,),
                           threads=resolve_threads(threads), device=device, options=options, weights=str(weights),
                           input_size=input_size, calibration=calibration,
                           calibration_size=calibration_size)
        launcher = lab(cluster, None) if cluster else None  # the lab places it: any node with its backend
        rec = acc.evaluate(chosen, acc.EvalData(data, limit, labels, class_map, num_classes, workers),
                           cache_dir=default_cache_dir(), progress=progress, layers=layers, launcher=launcher)
    finally:
        if bar.live.is_started:
            bar.stop()
        if launcher is not None:
            launcher.close()
    path = accuracy_records.save(root, rec)
    said = accuracy_records.AccuracyRecord.of(rec)
    out.print(f"{model} · {backend} {precision}: top-1 {said.top1:.2%}, top-{said.k} {said.top5:.2%} on {said.images} "
              f"images; PyTorch fp32 {said.reference_top1:.2%} / {said.reference_top5:.2%} (Δ top-1 "
              f"{said.delta_top1 * 100:+.2f} pt, same top-1 prediction on {said.agreement:.2%})", markup=False, highlight=False)
    paired = said.paired
    out.print(f"paired with fp32 on the same images: {describe_paired(paired)}, McNemar p {paired['mcnemar_p']:.2g}; "
              f"{paired['changed_predictions']} of {paired['images']} top-1 predictions changed", markup=False,
              highlight=False)
    if said.calibrated_on_random_input:
        err.print("note: calibrated on random input (no --calibration): this int8 accuracy means nothing about a "
                  "calibrated deployment; its latency is still valid", markup=False, highlight=False)
    if said.layers:
        from harness.publish.int8 import layer_table
        from harness.publish.plots import draw_layers

        out.print(rich_table(f"the layers that lose the signal (of {len(said.layers['activations'])}, on "
                             f"{said.layers['inputs']} calibration images)", *layer_table(said.layers)))
        plot = draw_layers(said.layers, f"{model} · {backend} int8: SQNR along depth", path.with_suffix(".layers.png"))
        out.print(f"along depth: {plot}", markup=False, highlight=False)
    out.print(f"artifact: {said.artifact.get('path', 'PyTorch module (no file)')}; record: {path}",
              markup=False, highlight=False)


@app.command("int8", rich_help_panel="Measure")
@user_errors
def int8_study(
    model: list[str] = typer.Option(None, "--model", "-m", help="Model (repeatable); default: mobileone_s0, mobilenetv2_100, efficientnet_b0."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backend (repeatable); default: every available CPU backend with int8."),
    threads: int = THREADS_OPTION,
    weights: str = WEIGHTS_OPTION,
    input_size: int = INPUT_SIZE_OPTION,
    data: Path = typer.Option(None, "--data", help="Images to measure Δtop-1 on (as `bench accuracy --data`); needs --weights."),
    limit: int = typer.Option(None, "--limit", help="With --data: evaluate N images spread evenly over the set."),
    num_classes: int = typer.Option(None, "--num-classes", help="With --data: outputs of the model's head."),
    options: list[str] = BACKEND_OPTIONS_OPTION,
    calibration: str = CALIBRATION_OPTION,
    calibration_size: int = CALIBRATION_SIZE_OPTION,
    pairs: int = typer.Option(20, "--pairs", help="Alternating fp32/int8 window pairs per model and backend."),
    window_ms: float = typer.Option(100.0, "--window-ms", help="Milliseconds per window."),
    out_dir: Path = typer.Option(None, "--out", help="Study folder; default: results/runs/int8-<new id>."),
    budget: float = typer.Option(None, "--budget", help="Top-1 points int8 may lose: per backend, find the fewest layers kept float that meet it on the labelled --calibration images (worst first), then time that int8 (needs --weights)."),
    cluster: str = CLUSTER_OPTION,
) -> None:
    """int8 against fp32 for every model x CPU backend: the speed-up in lockstep with its CI and, with --data,
    the accuracy int8 costs (Δtop-1 with a paired CI); writes the study's table and plots to int8.md. With
    --cluster each fp32/int8 pair, and each evaluation, runs on a lab's node that has the backend."""
    from harness.evaluate import accuracy as acc
    from harness.listing.backends import int8_cpu_backends
    from harness.measure.inputs import Inputs, Stores
    from harness.measure.planner import calibration_from_options, protocol_from_options
    from harness.measure.planner import jobs as planned
    from harness.measure.selection import Selection, of_job
    from harness.publish import int8
    from harness.publish.site import write_markdown
    from harness.store import accuracy_records
    from harness.store.records import atomic_write_text
    from harness.store.runs import check_output, default_cache_dir, default_index, dumps, new_run_dir
    from harness.track.int8_budget import budget_search, check_budget
    from harness.track.int8_study import STUDY_MODELS, run_study
    from harness.track.lockstep import Pairing

    pairing = Pairing(pairs, window_ms / 1e3).checked()  # before a search or a build, not after
    cluster = checked_cluster(cluster)
    if data is not None and not weights:
        raise HarnessError("--data measures the accuracy of trained weights: add --weights (one model)")
    if budget is not None:
        check_budget(budget)
        if not weights or not calibration:
            raise HarnessError("--budget searches on the accuracy of trained weights on labelled calibration images: "
                               "add --weights and --calibration (class folders)")
    chosen = Selection(models=model or STUDY_MODELS, backends=backend or int8_cpu_backends(), precisions=("int8",),
                       threads=resolve_threads(threads), options=options, weights=weights,
                       input_size=input_size, calibration=calibration, calibration_size=calibration_size)
    jobs = planned(chosen)
    labelled = [p for p in (data, calibration if budget is not None else None) if p is not None]
    if labelled:
        acc.check_labelled(chosen, labelled, num_classes)
    calibrations = calibration_from_options(jobs, chosen, note)
    folder = out_dir or new_run_dir(RESULTS, prefix="int8-")
    check_output(folder, "--out")
    if budget is not None:
        with err.status("bench int8 --budget: searching the fewest float layers"):
            jobs, searches = budget_search(jobs, budget, chosen, num_classes, note)
        # written now: how far each search got is the finding, also when none meets the budget
        atomic_write_text(folder / "budget.json", dumps({k: v.as_dict() for k, v in searches.items()}))
        if not jobs:
            note(f"no backend meets --budget {budget:g} even with every candidate layer float; nothing was timed "
                 f"(each search's trail: {folder / 'budget.json'})")
            raise typer.Exit(EXIT_NOTHING_MEASURED)

    launcher = lab(cluster, None) if cluster else None  # the lab places each pair, and each evaluation, on a node

    def evaluate(job) -> dict:
        rec = acc.evaluate(of_job(job, chosen), acc.EvalData(data, limit, num_classes=num_classes),
                           cache_dir=default_cache_dir(), launcher=launcher)
        accuracy_records.save(RESULTS, rec)
        return rec

    try:
        with err.status("bench int8") as status:
            study = run_study(jobs, protocol_from_options(), folder, Stores(default_cache_dir(), default_index(RESULTS)),
                              inputs=Inputs(weights, calibrations), pairing=pairing, say=note,
                              evaluate=evaluate if data else None, launcher=launcher,
                              progress=lambda j, i, n: status.update(f"{j.model} · {j.backend}: pair {max(i + 1, 0)}/{n}"))
    finally:
        if launcher is not None:
            launcher.close()
    measured = accuracy_records.load_all(RESULTS)
    report = write_markdown(study.fp32 + study.int8, measured, folder / "int8.md")
    out.print(rich_table("int8 beside fp32", *int8.table(int8.rows(study.fp32 + study.int8, measured))))
    out.print(int8.LEGEND, highlight=False)
    if not calibration:
        note("calibrated on seeded random input (no --calibration): the latencies hold, int8 accuracy means nothing")
    print_outcome(study.fp32 + study.int8, folder)
    out.print(f"report: {report}; leaderboard: bench leaderboard {folder / 'fp32'} {folder / 'int8'}",
              markup=False, highlight=False)


@app.command(rich_help_panel="Measure")
@user_errors
def selfcheck(
    model: str = typer.Option("mobileone_s0", "--model", "-m", help="Model to compare on."),
    threads: int = typer.Option(None, "--threads", help="Threads (default 1, see docs/protocol.md)."),
    rounds: int = typer.Option(12, "--rounds", help="Paired rounds per reference (harness, reference alternating)."),
    seconds: float = typer.Option(0.5, "--seconds", help="Measuring time per side and round."),
) -> None:
    """Measure the harness itself: overhead per iteration and agreement with ORT and benchmark_app."""
    import numpy as np

    from harness.track.selfcheck import run_selfcheck

    threads = resolve_threads(threads)
    with err.status("selfcheck") as status:
        result = run_selfcheck(model, threads, rounds, seconds, progress=lambda m: status.update(f"selfcheck: {m}"))
    out.print(f"harness clock cost inside each sample: {result.empty_step_ns:.0f} ns (p50 of an empty step)", highlight=False)
    out.print(f"harness loop cost per iteration: {result.loop_ns_per_iter:.0f} ns", highlight=False)
    for comp in result.comparisons:
        if comp.skipped:
            out.print(f"{comp.name}: skipped ({comp.skipped})", markup=False, highlight=False)
            continue
        lo, hi = comp.ci
        out.print(f"{comp.name} ({model}, {threads} thread{'s' if threads > 1 else ''}): median paired ratio "
                  f"{comp.ratio:.3f} [95% CI {lo:.3f}-{hi:.3f}] over {len(comp.harness_ms)} rounds (harness median "
                  f"{np.median(comp.harness_ms):.3f} ms, reference {np.median(comp.reference_ms):.3f} ms)",
                  markup=False, highlight=False)
        out.print(f"    overhead share of this job: {result.empty_step_ns / (min(comp.harness_ms) * 1e6):.3%}", highlight=False)


@app.command(rich_help_panel="Measure")
@user_errors
def ablation(
    kind: str = typer.Argument(..., help="activations (the paper's Table 2) or blocks (skip / SE, Table 3)."),
    backend: list[str] = typer.Option(None, "--backend", "-b", help="Backends (default: every available CPU one)."),
    threads: int = THREADS_OPTION,
    preset: str = PRESET_OPTION,
    out_dir: Path = typer.Option(None, "--out", help="Run folder (resumed if it exists)."),
    fmt: Fmt = FORMAT_OPTION,
    quick: bool = QUICK_ALIAS,
    precise: bool = PRECISE_ALIAS,
) -> None:
    """Time the paper's 30-layer ablation networks per activation or block type, relative to the baseline."""
    from harness.cli.sweep_progress import StatusLine
    from harness.measure.inputs import Stores
    from harness.measure.planner import jobs as planned
    from harness.measure.planner import protocol_from_options
    from harness.measure.runner import run_sweep
    from harness.measure.selection import Selection
    from harness.publish import ablation as abl
    from harness.store.runs import check_output, default_index, new_run_dir

    fmt.check("ablation", Fmt.rich, Fmt.md)
    models = abl.models(kind)
    cfg = protocol_from_options(preset_of(preset, quick, precise))
    jobs = planned(Selection(models=models, backends=backend, threads=resolve_threads(threads)))
    folder = out_dir or new_run_dir(RESULTS, prefix=f"ablation-{kind}-")
    check_output(folder, "--out")
    with err.status(f"ablation {kind}") as status:
        records = run_sweep(jobs, cfg, folder, stores=Stores(index_db=default_index(RESULTS)),
                            listener=StatusLine(status, f"ablation {kind}"))
    if fmt is Fmt.md:
        out.print(abl.to_markdown(kind, records), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(rich_table(f"ablation: {kind} (p50 ms ± CI, × vs {abl.study(kind)[1]})", *abl.table(kind, records)))
    print_outcome(records, folder)


def print_outcome(records: list[Record], folder: Path) -> None:
    """After a sweep: every job without a number, with its reason, then where the run is; exit 4 when
    onebench made an invalid record (a bug; the other jobs' records landed), 3 when no job was measured."""
    from harness.measure.recording import BUG_PREFIX

    for rec in records:
        if not rec.ok:
            err.print(f"{rec.status}: {rec.job_id}: {rec.message}", markup=False, highlight=False)
    out.print(f"run folder: {folder}", markup=False, highlight=False)
    bugs = [rec for rec in records if rec.status == "error" and rec.message.startswith(BUG_PREFIX)]
    if bugs:
        err.print(f"error: {len(bugs)} job(s) lost to a bug in onebench: {bugs[0].message}".splitlines()[0],
                  markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BUG)
    if records and not any(rec.ok for rec in records):
        err.print(f"error: no job was measured ({len(records)} skipped or failed, reasons above)",
                  markup=False, highlight=False)
        raise typer.Exit(EXIT_NOTHING_MEASURED)
