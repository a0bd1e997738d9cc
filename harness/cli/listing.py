"""`bench list models|backends`: what the zoo holds and which runtimes this machine has."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.common import (
    flag,
    list_app,
    out,
    user_errors,
)


def _fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _fmt_m(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}M"


@list_app.command("models")
@user_errors
def list_models(
    names: list[str] = typer.Argument(None, help="Only these models (default: all registered)."),
    count: bool = flag(True, help="Build each model and count params/MACs (slower)."),
) -> None:
    """The registry: our counted params/MACs beside the reference figures."""
    from harness.listing.models import cached_rows, model_rows

    table = Table(title="onebench model zoo (fused form, 224x224; * = default sweep)")
    table.add_column("model", no_wrap=True)
    for col in ("params (vs ref)", "MACs", "ref", "Δ", "top-1"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in (cached_rows(names or None) if count else model_rows(names or None, count=False)):
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
def list_backends(
    options: bool = flag(False, "--options", help="Each backend's settings (`-o BACKEND.FIELD=VALUE`) with defaults."),
) -> None:
    """Every backend: whether it runs here, and if not, why and the command that fixes it."""
    from backends import registry
    from harness.listing.backends import backend_rows

    table = Table(title="onebench backends")
    for col in ("backend", "runs here", "precisions", "version", "why not / install"):
        table.add_column(col, overflow="fold")
    for r in backend_rows():
        why = "" if r.ok else r.reason + (f" — {r.install}" if r.install else "")
        table.add_row(r.name, "yes" if r.ok else "converts only" if r.prepares else "no",
                      ", ".join(registry.get(r.name).precisions), r.version, escape(why))
    out.print(table)
    profilers = {r.name: registry.get(r.name).profiler for r in backend_rows()}
    out.print("per-op profilers (bench profile): " + "; ".join(f"{n}: {p.split(' (')[0]}" for n, p in profilers.items() if p)
              + "; none: " + (", ".join(n for n, p in profilers.items() if not p) or "–"), markup=False, highlight=False)
    if options:
        for r in backend_rows():
            lines = registry.get(r.name).config.describe()
            out.print(f"{r.name}: " + ("no options" if not lines else ""), markup=False, highlight=False)
            for line in lines:
                out.print(f"  -o {r.name}.{line}", markup=False, highlight=False)
        from backends.int8_recipe import SECTION, Int8Recipe

        out.print(f"{SECTION} (every int8 job, whatever its runtime: what happens to the network before a quantizer "
                  "sees it):", markup=False, highlight=False)
        for line in Int8Recipe.describe():
            out.print(f"  -o {SECTION}.{line}", markup=False, highlight=False)
