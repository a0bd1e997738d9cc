"""The int8 repair study's report: for each network x CPU runtime x repair, what int8 costs in top-1 and
buys in speed, and which repaired MobileOne a user can ship.

Rows are `int8.rows` (an int8 record joined with its fp32 partner's lockstep speed-up and its accuracy
record's paired Δtop-1); the repair is read back from the job's `int8.*` options, so any run of
`bench int8 -o int8.FIELD=VALUE` lands in the right row. A repair "holds" when the upper end of the loss's
95% CI is at most the budget (1.0 point): the paired CI's lower end of Δtop-1 >= -budget.
"""

from __future__ import annotations

from pathlib import Path

from backends import int8_recipe
from harness.publish import tables
from harness.publish.int8 import Int8Row, delta_text, speedup_text
from harness.publish.plots import Point, draw, slug

BUDGET_PT = 1.0
NO_REPAIR = "none"


def repair(row: Int8Row) -> str:
    """The row's recipe as a short name: `none`, `equalize`, `float 3 layers`, `equalize + float 3 layers`."""
    recipe = int8_recipe.of(row.options)
    parts = (["equalize"] if recipe.equalize else []) + (
        [f"float {len(recipe.layers())} layer{'s' if len(recipe.layers()) != 1 else ''}"] if recipe.layers() else [])
    return " + ".join(parts) or NO_REPAIR


def holds(row: Int8Row, budget_pt: float = BUDGET_PT) -> bool:
    """Δtop-1's CI lower end within the budget, on images (a random calibration's accuracy means nothing)."""
    return bool(row.delta and row.calibrated and row.delta["ci_low"] * 100 >= -budget_pt - 1e-9)


def table(rows: list[Int8Row], budget_pt: float = BUDGET_PT) -> tuple[list[str], list[list[str]]]:
    header = ["model", "runtime", "repair", "top-1 fp32 → int8 (%)", "Δ top-1 pt [95% CI]", f"within {budget_pt:g} pt",
              "speed-up over fp32 [95% CI]", "fp32 ms", "int8 ms", "quantized ops"]
    body = []
    for r in sorted(rows, key=lambda r: (r.model, r.backend, repair(r) != NO_REPAIR, repair(r))):
        top1 = f"{r.fp32_top1:.1f} → {r.int8_top1:.1f}" if r.fp32_top1 is not None and r.int8_top1 is not None else "—"
        body.append([r.model, r.backend, repair(r), top1, delta_text(r), "yes" if holds(r, budget_pt) else "no",
                     speedup_text(r), "—" if r.fp32_ms is None else f"{r.fp32_ms:.3f}",
                     "—" if r.int8_ms is None else f"{r.int8_ms:.3f}", r.quantized or "—"])
    return header, body


def best(rows: list[Int8Row], model: str, budget_pt: float = BUDGET_PT) -> dict[str, Int8Row | None]:
    """Per runtime, the fastest of `model`'s int8 rows that hold the budget (None where none does)."""
    out: dict[str, Int8Row | None] = {}
    for backend in sorted({r.backend for r in rows if r.model == model}):
        ok = [r for r in rows if r.model == model and r.backend == backend and holds(r, budget_pt) and r.speedup]
        out[backend] = max(ok, key=lambda r: r.speedup or 0.0) if ok else None
    return out


def points(rows: list[Int8Row], backend: str) -> list[Point]:
    """One runtime's plot: each network's fp32 point and each repair's int8 point (p50 ms of the lockstep
    windows, top-1 on the held-out images); MobileOne highlighted. Unlike the leaderboard's plots, an int8
    that failed parity stays on: its top-1 was measured on the held-out images, and the collapse is the finding."""
    pts: dict[str, Point] = {}
    for r in rows:
        if r.backend != backend or r.int8_top1 is None or not r.int8_ms:
            continue
        mobileone = r.model.startswith("mobileone")
        if r.fp32_ms and r.fp32_top1 is not None:
            pts.setdefault(f"{r.model} fp32", Point(f"{r.model} fp32", r.fp32_ms, r.fp32_top1, True, mobileone))
        name = f"{r.model} int8 {repair(r)}"
        pts[name] = Point(name, r.int8_ms, r.int8_top1, True, mobileone)
    return list(pts.values())


def draw_study(rows: list[Int8Row], folder: Path, where: str = "") -> dict[str, list[Path]]:
    """One accuracy-vs-latency plot per runtime with every repair as a point and the Pareto front."""
    out = {}
    for backend in sorted({r.backend for r in rows}):
        pts = points(rows, backend)
        if pts:
            out[backend] = draw(pts, f"int8 repairs · {backend}" + (f" · {where}" if where else ""),
                                folder / f"int8-repairs-{slug(backend)}", ylabel="held-out top-1 (%)")
    return out


def markdown(rows: list[Int8Row], plots: dict[str, list[Path]], folder: Path, budget_pt: float = BUDGET_PT) -> str:
    """The study's page: the verdict per runtime for each MobileOne, the full table, the plots."""
    lines = ["## int8 repairs", ""]
    for model in sorted({r.model for r in rows if r.model.startswith("mobileone")}):
        for backend, row in best(rows, model, budget_pt).items():
            if row is None:
                closest = max((r for r in rows if r.model == model and r.backend == backend and r.delta),
                              key=lambda r: r.delta["ci_low"], default=None)
                got = f"; the closest, {repair(closest)}, {delta_text(closest)} pt" if closest else ""
                lines.append(f"- {model} on {backend}: no repair holds within {budget_pt:g} pt{got}")
            else:
                lines.append(f"- {model} on {backend}: **{repair(row)}** holds ({delta_text(row)} pt) at "
                             f"{speedup_text(row)} over fp32")
    lines += ["", tables.markdown(*table(rows, budget_pt)), "",
              f"Holds = the upper end of the loss's paired 95% CI is at most {budget_pt:g} point; speed-up = fp32 p50 / "
              "int8 p50 in lockstep (alternating windows, bootstrap CI over pairs).", ""]
    for backend, paths in plots.items():
        png = next(p for p in paths if p.suffix == ".png")
        lines.append(f"![int8 repairs on {tables.md_cell(backend)}]({png.relative_to(folder) if png.is_relative_to(folder) else png})")
    return "\n".join(lines) + "\n"

