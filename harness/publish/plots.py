"""Accuracy-vs-latency plots, one per leaderboard column: the MobileOne paper's Figure 1 for any machine.

Each measured model is a point (p50 latency, top-1); filled markers are top-1 measured through the
timed artifact, hollow ones the reported figure; a `~` after a name marks an unstable latency and a
failed parity keeps a model off the plot, as in the tables. The Pareto frontier (no other model both faster and
more accurate) is drawn as a step line, and reparameterizable models (MobileOne; the zoo says which) are highlighted. PNG for READMEs, SVG for papers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.publish.leaderboard import Row


@dataclass(frozen=True)
class Point:
    model: str
    latency_ms: float
    top1: float
    measured: bool
    highlight: bool
    unstable: bool = False


def points(rows: list[Row], column: str) -> list[Point]:
    """The models with both a measured latency in `column` (without a parity failure) and a top-1."""
    out = []
    for row in rows:
        cell, top1 = row.cells.get(column), row.top1_for(column)
        if cell is None or cell.status != "ok" or cell.p50_ms is None or cell.parity_failed or top1 is None:
            continue
        out.append(Point(row.model, cell.p50_ms, top1.value, top1.measured, row.highlight, cell.unstable))
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


def draw(pts: list[Point], title: str, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    frontier = pareto(pts)
    if len(frontier) > 1:
        ax.step([p.latency_ms for p in frontier], [p.top1 for p in frontier], where="post", color="0.6",
                linestyle="--", linewidth=1, label="Pareto frontier", zorder=1)
    for p in pts:
        colour = "#d62728" if p.highlight else "#1f77b4"
        ax.scatter([p.latency_ms], [p.top1], s=60 if p.highlight else 40, zorder=3, edgecolors=colour,
                   facecolors=colour if p.measured else "white", linewidths=1.5)
        ax.annotate(p.model + ("~" if p.unstable else ""), (p.latency_ms, p.top1), textcoords="offset points", xytext=(5, 4), fontsize=8,
                    color=colour, fontweight="bold" if p.highlight else "normal")
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color="#d62728", label="reparameterizable (fused)"),
        plt.Line2D([], [], marker="o", linestyle="", color="#1f77b4", label="other models"),
        plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="white", color="0.3", label="top-1 reported (not measured)"),
    ]
    if len(frontier) > 1:
        handles.append(plt.Line2D([], [], color="0.6", linestyle="--", label="Pareto frontier"))
    if any(p.unstable for p in pts):
        handles.append(plt.Line2D([], [], linestyle="", label="name~ = latency unstable"))
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.margins(x=0.2, y=0.15)
    ax.set_xlabel("p50 latency (ms)")
    ax.set_ylabel("ImageNet top-1 (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
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
