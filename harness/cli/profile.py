"""`bench profile`: the job's own artifact under its runtime's profiler, per op and per layer."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from harness.cli.common import (
    BACKEND_OPTIONS_OPTION,
    CALIBRATION_OPTION,
    CALIBRATION_SIZE_OPTION,
    CHANNELS_LAST_OPTION,
    CLUSTER_OPTION,
    COMPUTE_UNITS_OPTION,
    DEVICE_OPTION,
    EXIT_NOTHING_MEASURED,
    FORM_OPTION,
    FORMAT_OPTION,
    RESULTS,
    THREADS_OPTION,
    WEIGHTS_OPTION,
    Fmt,
    app,
    checked_cluster,
    err,
    lab,
    note,
    out,
    resolve_threads,
    user_errors,
)
from harness.errors import HarnessError
from harness.publish.tables import rich_table


class By(str, Enum):
    op = "op"
    layer = "layer"


@app.command(rich_help_panel="Measure")
@user_errors
def profile(
    model: str = typer.Option(..., "--model", "-m", help="The model (one)."),
    backend: str = typer.Option(..., "--backend", "-b", help="The backend (one); `bench list backends` says which profile."),
    precision: str = typer.Option(None, "--precision", "-p", help="fp32 (default), bf16, fp16, int8."),
    batch: int = typer.Option(1, "--batch", help="Batch size."),
    threads: int = THREADS_OPTION,
    form: str = FORM_OPTION,
    device: str = DEVICE_OPTION,
    compute_units: list[str] = COMPUTE_UNITS_OPTION,
    channels_last: bool = CHANNELS_LAST_OPTION,
    weights: str = WEIGHTS_OPTION,
    options: list[str] = BACKEND_OPTIONS_OPTION,
    calibration: str = CALIBRATION_OPTION,
    calibration_size: int = CALIBRATION_SIZE_OPTION,
    iterations: int = typer.Option(20, "--iterations", help="Profiled inferences after warm-up (each op's median is kept)."),
    compare: str = typer.Option(None, "--compare", help="Another backend, FIELD=VALUE[,...] (form=train, precision=int8, "
                                "backend=openvino, threads=2), or a stored profile (.json): side by side."),
    top: int = typer.Option(15, "--top", help="Rows shown (the record keeps every op)."),
    by: By = typer.Option(By.layer, "--by", help="layer: op kinds and the top layers; op: op kinds only."),
    depth: int = typer.Option(None, "--depth", help="Merge layers to this many module-path parts (2: stage1.0)."),
    fmt: Fmt = FORMAT_OPTION,
    output: Path = typer.Option(None, "--output", help="Write the md or json output to this file too."),
    out_dir: Path = typer.Option(None, "--out", help="Run folder the profile record goes to (profiles/); default: "
                                 "the latest run folder, else a new one."),
    cluster: str = CLUSTER_OPTION,
) -> None:
    """Where the time goes: the artifact `bench run` times, under the runtime's own profiler (ONNX Runtime
    session profiling, OpenVINO performance counters, torch.profiler, TensorRT IProfiler, Core ML
    MLComputePlan), each op named by the PyTorch module it came from, summarized by op kind."""
    from harness.measure.selection import Selection
    from harness.profile import runner
    from harness.publish.profile import to_json, to_markdown, totals_line, views
    from harness.store import profile_records
    from harness.store.records import atomic_write_text
    from harness.store.runs import check_output, check_output_file, default_cache_dir, latest_folder, new_run_dir

    fmt.check("profile", Fmt.rich, Fmt.md, Fmt.json)
    cluster = checked_cluster(cluster)
    for option, value in (("--top", top), ("--depth", depth)):
        if value is not None and value < 1:
            raise HarnessError(f"{option} must be at least 1, not {value}")
    if output is not None:
        if fmt is Fmt.rich:
            raise HarnessError("--output writes md or json: add --format md or --format json")
        check_output_file(output, "--output")
        if not output.parent.is_dir():
            raise HarnessError(f"--output {output}: the folder {output.parent} does not exist")
    chosen = Selection(models=(model,), backends=(backend,), precisions=(precision,) if precision else (), batches=(batch,),
                       threads=resolve_threads(threads), device=device, form=form, channels_last=channels_last,
                       options=options, weights=weights, compute_units=compute_units, calibration=calibration,
                       calibration_size=calibration_size)
    request = runner.plan(chosen, iterations)
    other = runner.compared(compare, request, chosen) if compare else None
    sides = [request] + ([other] if isinstance(other, runner.Request) else [])
    if (calibration is not None or calibration_size is not None) and not any(s.job.precision == "int8" for s in sides):
        raise HarnessError("--calibration and --calibration-size apply to int8; add -p int8 (or --compare precision=int8)")
    folder = out_dir or latest_folder(RESULTS) or new_run_dir(RESULTS)
    check_output(folder / profile_records.PROFILES_DIR, "--out")
    records = []
    launcher = lab(cluster, None) if cluster else None  # the lab places it: any node with its backend
    try:
        for side in sides:
            err.print(f"profiling {side.job.model} on {side.job.backend} ({side.iterations} inferences) …", markup=False,
                      highlight=False)
            try:
                rec = runner.profile(side, default_cache_dir(), launcher)
            except runner.CannotProfile as exc:
                err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_NOTHING_MEASURED) from None
            records.append(rec)
    finally:
        if launcher is not None:
            launcher.close()
    for rec in records:
        note(f"profile record: {profile_records.save(folder, rec)}")
    typed = [profile_records.ProfileRecord.of(rec) for rec in records]
    stored = other if isinstance(other, profile_records.ProfileRecord) else None
    first, second = typed[0], (typed[1] if len(typed) > 1 else stored)
    by_key = by.value
    if fmt is Fmt.json:
        text = to_json(first, second)
    elif fmt is Fmt.md:
        text = to_markdown(first, by_key, top, depth, second)
    else:
        for name, header, rows in views(first, by_key, top, depth, second):
            out.print(rich_table(name, header, rows))
        for rec in [first] + ([second] if second else []):
            out.print(totals_line(rec), markup=False, highlight=False, soft_wrap=True)
        return
    if output is not None:
        atomic_write_text(output, text)
        note(f"wrote {output}")
    out.print(text, markup=False, highlight=False, soft_wrap=True)
