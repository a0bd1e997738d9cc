"""The `bench` command: parses, calls one function, prints. Bad input is one line on stderr, exit 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError
from model_zoo.errors import ZooError

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


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
