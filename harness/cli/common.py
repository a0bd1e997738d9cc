"""What every command group shares: the app, the consoles, `user_errors` (a failure is one line and an exit code), the options."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from harness.errors import HarnessError
from harness.publish.tables import rich_table
from model_zoo.errors import ZooError
from model_zoo.names import printable

RESULTS = Path("results")  # = harness.store.runs.RESULTS_ROOT (not imported: --help stays light)

app = typer.Typer(help="onebench: one timing protocol for mobile vision backbones on every runtime.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
list_app = typer.Typer(help="List models or backends.", no_args_is_help=True)
app.add_typer(list_app, name="list", rich_help_panel="List")

class PlainConsole(Console):
    """A rich console that writes every string it is given with its control characters escaped: names and
    messages come from plugins, records and native runtimes, and an ESC or a carriage return among them would
    repaint the user's terminal or forge a line in a CI log (rich's own styling is added after this)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(printable(o, keep="\n") if isinstance(o, str) else o for o in objects), **kwargs)


out = PlainConsole()
err = PlainConsole(stderr=True)
F = TypeVar("F", bound=Callable)


EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 2, 4, 130
EXIT_NOTHING_MEASURED = 3  # `run` / `ablation`: every job was skipped or failed (the gate's "cannot judge" code)


def flag(default: bool, *decls: str, **kw: Any) -> Any:
    """A boolean option, shown as `--quick` in help (typer 0.29 would print `--quick <bool>`, as if it
    took a value; `--quick true` is refused)."""
    return typer.Option(default, *decls, metavar="", **kw)


def note(message: str) -> None:
    """A side remark on stderr (which run `latest` meant, ...): stdout stays the command's output."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _one_line(message: str) -> None:
    err.print(f"error: {message}".splitlines()[0] if message else "error", markup=False, highlight=False, soft_wrap=True)


RESUMABLE = {"run", "ablation"}  # commands whose run folder resumes where an interrupt stopped them


def interrupted_note(command: str | None) -> str:
    """What an interrupt leaves, said per command: only a sweep's run folder resumes."""
    if command is None:  # outside any command's handling
        return "interrupted (nothing is left half-written; a sweep's run folder resumes where it stopped)"
    if command in RESUMABLE:
        return "interrupted (the run folder resumes where it stopped: run the same command with --out RUN_FOLDER)"
    return "interrupted (nothing is left half-written; this command does not resume: run it again)"


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
            err.print(interrupted_note(fn.__name__), markup=False, highlight=False)
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
    """Before any command: Ctrl-C and SIGTERM made one KeyboardInterrupt that never lands inside an import
    (`harness.interrupts`), then the modules named in $ONEBENCH_PLUGINS imported (models and backends they add)."""
    from harness import interrupts
    from harness.plugins import load_plugins

    interrupts.install()
    load_plugins(deadline=True)


class Fmt(str, Enum):
    """`--format`: the same four choices on every command that prints a report; each command refuses, in one
    line, the ones it cannot write (`Fmt.check`)."""

    rich = "rich"
    md = "md"
    csv = "csv"
    json = "json"

    def check(self, command: str, *allowed: Fmt) -> Fmt:
        if self not in allowed:
            raise HarnessError(f"--format {self.value}: bench {command} writes {', '.join(f.value for f in allowed)}")
        return self


FORMAT_OPTION = typer.Option(Fmt.rich, "--format", help="rich (terminal), md (Markdown), csv or json, where the command writes it.")


def _preset_help() -> str:
    from harness.measure.protocol import PRESETS

    def says(name: str) -> str:
        cfg = PRESETS[name]
        processes = f"{cfg.repeats} process{'es' if cfg.repeats > 1 else ''}" + (
            f" (up to {cfg.max_repeats} where figures disagree)" if cfg.max_repeats > cfg.repeats else "")
        return f"{name}: {processes} per job, {cfg.min_s:g}-{cfg.max_s:g} s windows, target CI ±{cfg.target_rel_ci:.1%}"

    return "Protocol preset. " + "; ".join(says(n) for n in PRESETS) + "."


PRESET_OPTION = typer.Option("default", "--preset", help=_preset_help())
# one release: the old flags, hidden, still work and say what to use
QUICK_ALIAS = typer.Option(False, "--quick", hidden=True)
PRECISE_ALIAS = typer.Option(False, "--precise", hidden=True)


class CompareSeries(str, Enum):
    """`bench compare --series`: the figure a comparison decides on."""

    auto = "auto"
    ms = "ms"
    counted = "counted"


class Progress(str, Enum):
    """`bench run --progress`: what the sweep says as it goes, on stderr."""

    rich = "rich"
    quiet = "quiet"
    json = "json"


def progress_of(progress: Progress, quiet: bool = False, json_progress: bool = False) -> Progress:
    """`--progress`, or the old `-q`/`--quiet` and `--json-progress` (said on stderr, one release)."""
    if quiet and json_progress:
        raise HarnessError("--quiet and --json-progress contradict each other; pass --progress quiet or --progress json")
    if quiet or json_progress:
        old, new = ("--quiet", Progress.quiet) if quiet else ("--json-progress", Progress.json)
        if progress is not Progress.rich and progress is not new:
            raise HarnessError(f"{old} and --progress {progress.value} contradict each other; pass --progress once")
        if not quiet:  # -q keeps its promise of a quiet stderr
            note(f"note: {old} is now --progress {new.value}")
        return new
    return progress


def preset_of(name: str, quick: bool = False, precise: bool = False) -> str:
    """The preset a command runs: `--preset NAME`, or an old `--quick`/`--precise` (said once on stderr)."""
    from harness.measure.protocol import PRESETS

    if quick and precise:
        raise HarnessError("--quick and --precise contradict each other; pass --preset quick or --preset precise")
    old = "quick" if quick else "precise" if precise else None
    if old:
        if name != "default" and name != old:
            raise HarnessError(f"--{old} and --preset {name} contradict each other; pass --preset once")
        note(f"note: --{old} is now --preset {old}")
        name = old
    if name not in PRESETS:
        raise HarnessError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return name


def resolve_threads(value: int | None) -> int:
    """`--threads` checked (1 by default; docs/protocol.md, "Threads"); imported late: it loads the zoo."""
    from harness.measure.planner import threads_option

    return threads_option(value)


# The job-selection options `run` and `prepare` share (one definition, one help text).
MODELS_OPTION = typer.Option(None, "--model", "-m", help="Model name (repeatable); default: the default sweep's nine (see `bench list models`, marked *).")
BACKENDS_OPTION = typer.Option(None, "--backend", "-b", help="Backend (repeatable); default: every available CPU backend.")
PRECISIONS_OPTION = typer.Option(None, "--precision", "-p", help="fp32 (default), bf16, fp16, int8 (repeatable).")
BACKEND_OPTIONS_OPTION = typer.Option(None, "--option", "-o", help="A backend setting, BACKEND.FIELD=VALUE (repeatable; `bench list backends --options` lists them).")
CALIBRATION_OPTION = typer.Option(None, "--calibration", help="int8: folder of images to calibrate on (class folders or flat); default: seeded random input, whose accuracy means nothing.")
CALIBRATION_SIZE_OPTION = typer.Option(None, "--calibration-size", help="int8: calibration images (default 300, spread over the folder).")
BATCHES_OPTION = typer.Option(None, "--batch", help="Batch size (repeatable); default 1.")
FORM_OPTION = typer.Option("fused", "--form", help="fused (inference form) or train.")
DEVICE_OPTION = typer.Option("cpu", "--device", help="cpu or cuda.")
RUN_DEVICE_OPTION = typer.Option("cpu", "--device", help="cpu, cuda, or iphone (Core ML on a phone attached to a cluster node: with --cluster).")
_FROM_ENVIRONMENT: dict[str, bool] = {}  # option name -> whether this invocation's value came from its variable


def _note_source(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Remember whether an option's value came from its environment variable (typer hands the command a
    plain value), so its error can name the variable the user set rather than a flag they never typed."""
    source = ctx.get_parameter_source(param.name)  # typer's own click's enum (typer vendors click): compared by name
    _FROM_ENVIRONMENT[param.name] = getattr(source, "name", None) == "ENVIRONMENT"
    return value


def checked_cluster(value: str | None) -> str | None:
    """The lab's address checked (HOST:PORT), its error naming where the value came from: `--cluster`, or the
    ONEBENCH_CLUSTER variable when that is what set it."""
    if value is None:
        return None
    from harness.cluster.address import check_address

    return check_address(value, "the ONEBENCH_CLUSTER variable" if _FROM_ENVIRONMENT.get("cluster") else "--cluster")


def lab(address: str, machine: list[str] | None):
    """The lab's launcher for `--cluster` (`bench run`, `bench profile`); its refusals said on stderr as it connects."""
    from harness.cluster.launcher import RayLauncher
    from harness.cluster.selectors import parse_all

    return RayLauncher(address, parse_all(machine), say=note)


CLUSTER_OPTION = typer.Option(None, "--cluster", envvar="ONEBENCH_CLUSTER", callback=_note_source, help="The lab's head, HOST:PORT (docs/device-lab.md). Needs the cluster extra: pip install 'onebench\\[cluster]'.")
ADDRESS_ALIAS = typer.Option(None, "--address", hidden=True)
WEIGHTS_OPTION = typer.Option(None, "--weights", help="Checkpoint to load (one model only); default: seeded random weights.")
INPUT_SIZE_OPTION = typer.Option(None, "--input-size", help="Input resolution for every model (default: each model's own, 224 for ImageNet); a study on small images, e.g. a network trained on digits at 64.")
THREADS_OPTION = typer.Option(None, "--threads", help="Threads for every backend; default 1 (the count that repeats on shared VMs; see docs/protocol.md).")
COMPUTE_UNITS_OPTION = typer.Option(None, "--compute-units", help="Core ML: all (default), cpu, cpu-gpu, cpu-ne (repeatable).")
CHANNELS_LAST_OPTION = flag(False, "--channels-last", help="CUDA: run PyTorch backends in NHWC memory format.")


def print_board(records: list, fmt: Fmt, figure: str = "ms") -> None:
    from harness.publish import counted, footprint, int8
    from harness.publish.leaderboard import as_lists, ms_legend, relative_legend, to_csv, to_markdown
    from harness.store.accuracy_records import load_all
    from harness.store.record import records_of

    records = records_of(records)
    accuracy = load_all(RESULTS)
    quantized = int8.rows(records, accuracy)
    if fmt is Fmt.md:
        out.print(to_markdown(records, accuracy, figure) + int8.markdown(quantized) + footprint.markdown(records)
                  + counted.markdown(records),
                  markup=False, highlight=False, soft_wrap=True)
    elif fmt is Fmt.csv:
        sys.stdout.write(to_csv(records, accuracy))
    else:
        title = "onebench leaderboard (relative to a pinned reference)" if figure == "relative" else "onebench leaderboard (latency, ms)"
        out.print(rich_table(title, *as_lists(records, accuracy, figure)))
        out.print(relative_legend(records) if figure == "relative" else ms_legend(records), highlight=False)
        if quantized:
            out.print(rich_table("int8 beside fp32", *int8.table(quantized)))
            out.print(int8.LEGEND, highlight=False)
        header, rows = footprint.table(records)
        if rows:
            out.print(rich_table("size and memory", header, rows))
            out.print(footprint.LEGEND, highlight=False)
        header, rows = counted.table(records)
        if rows:
            out.print(rich_table("counted work per inference (simulated CPU, not time)", header, rows))
            out.print(counted.LEGEND, highlight=False)
