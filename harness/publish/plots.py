"""Accuracy-vs-latency plots, one per leaderboard column: the MobileOne paper's Figure 1 for any machine.

Each measured model is a point (p50 latency, top-1); filled markers are top-1 measured through the
timed artifact, hollow ones the reported figure; a `~` after a name marks an unstable latency and a
failed parity keeps a model off the plot, as in the tables. The Pareto frontier (no other model both faster and
more accurate) is drawn as a step line, and reparameterizable models (MobileOne; the zoo says which) are highlighted. PNG for READMEs, SVG for papers.
`draw_int8` joins each model's fp32 and int8 points per backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.publish.int8 import Int8Row
from harness.publish.leaderboard import Row


@dataclass(frozen=True)
class Point:
    model: str
    latency_ms: float
    top1: float
    measured: bool
    highlight: bool
    unstable: bool = False
    ci_ms: tuple[float, float] | None = None  # the latency's 95% CI, drawn as a horizontal error bar


def points(rows: list[Row], column: str) -> list[Point]:
    """The models with both a measured latency in `column` (without a parity failure) and a top-1."""
    out = []
    for row in rows:
        cell, top1 = row.cells.get(column), row.top1_for(column)
        if cell is None or cell.status != "ok" or cell.p50_ms is None or cell.parity_failed or top1 is None:
            continue
        out.append(Point(row.model, cell.p50_ms, top1.value, top1.measured, row.highlight, cell.unstable, cell.ci_ms))
    return out


def pareto(pts: list[Point]) -> list[Point]:
    """The frontier, fastest first: each point more accurate than every faster one."""
    frontier: list[Point] = []
    for p in sorted(pts, key=lambda p: (p.latency_ms, -p.top1)):
        if not frontier or p.top1 > frontier[-1].top1:
            frontier.append(p)
    return frontier


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "plot"


HIGHLIGHT_COLOUR, OTHER_COLOUR = "#d62728", "#1f77b4"
LOG_RATIO = 20  # latencies spanning more than this factor are drawn on a log axis
LABEL_OFFSETS = ((6, 5), (6, -12), (-6, 5), (-6, -12), (6, 16), (6, -23), (-6, 16), (-6, -23), (0, 27), (0, -34))


def place_labels(ax, pts: list[Point], colour) -> None:
    """Each model's name beside its point, moved to the first of LABEL_OFFSETS where it overlaps no
    label placed before it (placed from the most accurate down, so the frontier's names win)."""
    ax.autoscale_view()  # the limits must be final: a point outside them has no label extent to test
    renderer = ax.figure.canvas.get_renderer()
    taken = []
    for p in sorted(pts, key=lambda p: -p.top1):
        for dx, dy in LABEL_OFFSETS:
            text = ax.annotate(p.model + ("~" if p.unstable else ""), (p.latency_ms, p.top1), textcoords="offset points",
                               xytext=(dx, dy), fontsize=8, color=colour(p), ha="left" if dx >= 0 else "right",
                               fontweight="bold" if p.highlight else "normal", zorder=4)
            box = text.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            text.remove()
        else:  # nowhere free: the first place, overlapping
            ax.annotate(p.model, (p.latency_ms, p.top1), textcoords="offset points", xytext=LABEL_OFFSETS[0],
                        fontsize=8, color=colour(p), zorder=4)


def draw(pts: list[Point], title: str, stem: Path, ylabel: str = "ImageNet top-1 (%)") -> list[Path]:
    """Write `stem`.png and `stem`.svg; return their paths. Latency from zero (or log-scaled when the models
    span more than LOG_RATIO), its CI as a horizontal bar, filled = top-1 measured, ring = reported."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    frontier = pareto(pts)
    if len(frontier) > 1:
        ax.step([p.latency_ms for p in frontier], [p.top1 for p in frontier], where="post", color="0.6",
                linestyle="--", linewidth=1, zorder=1)

    def colour(p: Point) -> str:
        return HIGHLIGHT_COLOUR if p.highlight else OTHER_COLOUR

    for p in pts:
        if p.ci_ms:
            ax.errorbar([p.latency_ms], [p.top1], xerr=[[p.latency_ms - p.ci_ms[0]], [p.ci_ms[1] - p.latency_ms]],
                        fmt="none", ecolor=colour(p), elinewidth=1, capsize=3, zorder=2)
        ax.scatter([p.latency_ms], [p.top1], s=60 if p.highlight else 40, zorder=3, edgecolors=colour(p),
                   facecolors=colour(p) if p.measured else "white", linewidths=1.5)
    latencies = [p.latency_ms for p in pts]
    if max(latencies) / min(latencies) > LOG_RATIO:
        ax.set_xscale("log")
        ax.set_xlabel("p50 latency (ms, log scale), bars: 95% CI")
    else:
        ax.set_xlim(0, max((p.ci_ms[1] if p.ci_ms else p.latency_ms) for p in pts) * 1.25)
        ax.set_xlabel("p50 latency (ms), bars: 95% CI")
    top1 = [p.top1 for p in pts]
    span = max(max(top1) - min(top1), 1.0)
    ax.set_ylim(min(top1) - 0.15 * span, max(top1) + 0.2 * span)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    place_labels(ax, pts, colour)
    handles = []
    if any(p.highlight for p in pts):
        handles.append(Patch(color=HIGHLIGHT_COLOUR, label="reparameterizable, fused (MobileOne)"))
    if any(not p.highlight for p in pts):
        handles.append(Patch(color=OTHER_COLOUR, label="other models"))
    if any(p.measured for p in pts):
        handles.append(plt.Line2D([], [], marker="o", linestyle="", color="0.3", label="top-1 measured on this artifact"))
    if any(not p.measured for p in pts):
        handles.append(plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="white", color="0.3",
                                  label="top-1 reported (paper), not measured"))
    if len(frontier) > 1:
        handles.append(plt.Line2D([], [], color="0.6", linestyle="--", label="Pareto frontier"))
    if any(p.unstable for p in pts):
        handles.append(plt.Line2D([], [], linestyle="", label="name~ = latency unstable"))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Date": None})
    plt.close(fig)
    return paths


def draw_all(columns: list[str], rows: list[Row], folder: Path, where: str = "") -> dict[str, list[Path]]:
    """One plot per column that has at least one point: {column: [png, svg]}."""
    out = {}
    for column in columns:
        pts = points(rows, column)
        if pts:
            out[column] = draw(pts, f"top-1 vs latency · {column}" + (f" · {where}" if where else ""),
                               folder / f"accuracy-latency-{slug(column)}")
    return out


def draw_int8(rows: list[Int8Row], reported: dict[str, float], folder: Path, where: str = "") -> dict[str, list[Path]]:
    """One plot per backend: each model's fp32 point (circle) joined to its int8 point (square) by an
    arrow, so what int8 buys (left) and costs (down) reads at a glance. y is top-1 measured on the same
    images where `bench accuracy -p int8` ran, else the reported fp32 figure for both (hollow: the int8
    accuracy is unknown); an int8 point calibrated on random input is an x (its accuracy means nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    for backend in sorted({r.label for r in rows}):
        pairs = [r for r in rows if r.label == backend and r.fp32_ms and r.int8_ms and not r.parity_failed]
        pairs = [r for r in pairs if r.fp32_top1 is not None or r.model in reported]
        if not pairs:
            continue
        fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
        for r in pairs:
            measured = r.int8_top1 is not None
            y0 = r.fp32_top1 if measured else reported[r.model]
            y1 = r.int8_top1 if measured else y0
            ax.annotate("", (r.int8_ms, y1), (r.fp32_ms, y0), arrowprops={"arrowstyle": "->", "color": "0.5"}, zorder=1)
            ax.scatter([r.fp32_ms], [y0], s=45, color=OTHER_COLOUR, zorder=3)
            ax.scatter([r.int8_ms], [y1], s=55, marker="s" if r.calibrated else "x", zorder=3, color=HIGHLIGHT_COLOUR,
                       facecolors=HIGHLIGHT_COLOUR if measured or not r.calibrated else "white")
            note = "" if measured else " (int8 top-1 not measured)"
            ax.annotate(f"{r.model}{note}", (r.int8_ms, y1), textcoords="offset points", xytext=(6, -12), fontsize=8)
        ax.set_xlim(0, max(r.fp32_ms for r in pairs) * 1.25)
        ax.set_xlabel("p50 latency (ms)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(f"fp32 (circle) → int8 (square; x: random calibration) · {backend}" + (f" · {where}" if where else ""),
                     fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        stem = folder / f"int8-{slug(backend)}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
        fig.savefig(paths[0], metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None})
        plt.close(fig)
        out[backend] = paths
    return out


def draw_layers(diagnosis: dict, title: str, path: Path) -> Path:
    """An int8 diagnosis along depth: each activation's SQNR against fp32 (accumulated) and the SQNR its own
    quantization leaves (added), in graph order, the five worst named: where the signal is lost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(diagnosis["activations"], key=lambda r: r["depth"])
    finite = [r for r in rows if r["sqnr_db"] is not None]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([r["depth"] for r in finite], [r["sqnr_db"] for r in finite], "o-", label="SQNR to fp32 (accumulated)")
    added = [r for r in rows if r["qdq_sqnr_db"] is not None]
    ax.plot([r["depth"] for r in added], [r["qdq_sqnr_db"] for r in added], "s:", label="SQNR its quantization leaves")
    for r in sorted(added, key=lambda r: r["qdq_sqnr_db"])[:5]:
        ax.annotate(r["layer"], (r["depth"], r["qdq_sqnr_db"]), fontsize=7, xytext=(3, -10), textcoords="offset points")
    ax.set_xlabel("depth (node order in the exported graph)")
    ax.set_ylabel("SQNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
