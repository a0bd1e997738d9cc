"""The device path: `bench export --bundle` and `bench ingest`."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.common import (
    COMPUTE_UNITS_OPTION,
    PRECISE_ALIAS,
    PRESET_OPTION,
    QUICK_ALIAS,
    RESULTS,
    app,
    err,
    out,
    preset_of,
    user_errors,
)


@app.command(rich_help_panel="Device (iPhone)")
@user_errors
def export(
    backend: str = typer.Option(..., "--backend", "-b", help="coreml (the one backend with a device bundle)."),
    bundle: Path = typer.Option(..., "--bundle", help="Folder to write (replaced if it is an earlier bundle)."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Models (repeatable); default: the default sweep's."),
    precision: list[str] = typer.Option(None, "--precision", "-p", help="Core ML: fp16 (default) and/or fp32."),
    compute_units: list[str] = COMPUTE_UNITS_OPTION,
    weights: str = typer.Option(None, "--weights", help="Checkpoint (one model only); default: the sweep's seeded weights."),
    preset: str = PRESET_OPTION,
    quick: bool = QUICK_ALIAS,
    precise: bool = PRECISE_ALIAS,
) -> None:
    """Write a device bundle (packages, protocol rules, manifest) for the iPhone runner in runners/ios."""
    import model_zoo
    from harness.device.bundle import export_bundle
    from harness.measure.planner import protocol_from_options
    from harness.store.runs import check_output, default_cache_dir

    check_output(bundle, "--bundle")
    with err.status("converting"):
        manifest, jobs = export_bundle(backend, model or model_zoo.mission_models(), precision, compute_units, bundle,
                                       protocol_from_options(preset_of(preset, quick, precise)), default_cache_dir(), weights)
    out.print(f"bundle: {manifest.parent} ({jobs} jobs); run it with the Swift runner (docs/coreml.md), "
              "then `bench ingest RESULTS.json`", markup=False, highlight=False)


@app.command(rich_help_panel="Device (iPhone)")
@user_errors
def ingest(file: Path = typer.Argument(..., help="A results file written by the device runner.")) -> None:
    """Validate device results and store them as a run (they then join leaderboards and comparisons)."""
    from harness.device.ingest import ingest as ingest_file

    folder = ingest_file(file, RESULTS)
    out.print(f"run folder: {folder}", markup=False, highlight=False)
