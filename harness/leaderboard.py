"""Leaderboard tables: models x backends, p50 with its CI, params, MACs and trust flags.

A cell that failed parity or was unstable carries a flag in every format; models are sorted by their
fastest p50, and a fast but wrong or noisy number carries its flag wherever it lands.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import model_zoo
from backends import registry
from model_zoo.errors import ZooError

LEGEND = "p50 in ms ± half-width of its 95% CI; ! = failed parity, ~ = unstable (see `bench show`), skip/error = no number"


@dataclass(frozen=True)
class Cell:
    status: str
    p50_ms: float | None = None
    p90_ms: float | None = None
    ci_ms: tuple[float, float] | None = None
    unstable: bool = False
    parity_failed: bool = False
    message: str = ""

    def text(self) -> str:
        if self.status != "ok":
            return self.status
        flags = ("!" if self.parity_failed else "") + ("~" if self.unstable else "")
        ci = ""
        if self.ci_ms and self.p50_ms:
            ci = f" ±{(self.ci_ms[1] - self.ci_ms[0]) / 2 / self.p50_ms:.1%}"
        return f"{self.p50_ms:.2f}{ci}{flags}"


@dataclass
class Row:
    model: str
    params: int | None
    macs_m: float | None
    cells: dict[str, Cell]

    def best(self) -> float:
        """The fastest measured p50 (flags stay visible in the cell), inf when nothing ran."""
        return min((c.p50_ms for c in self.cells.values() if c.status == "ok" and c.p50_ms is not None), default=math.inf)


def column_label(job: dict[str, Any], vary: set[str]) -> str:
    parts = [job["backend"]] + [str(job[k]) if k != "batch" else f"b{job[k]}" for k in ("device", "precision", "batch", "threads") if k in vary]
    return " ".join(parts)


def _cell(rec: dict[str, Any]) -> Cell:
    stats, parity = rec.get("stats"), rec.get("parity")
    if rec["status"] != "ok" or not stats:
        return Cell(rec["status"], message=rec["message"])
    ci = (stats["ci_low"] / 1e6, stats["ci_high"] / 1e6) if stats.get("ci_low") is not None else None
    return Cell("ok", stats["p50"] / 1e6, stats["p90"] / 1e6, ci, rec["unstable"],
                bool(parity) and not parity["passed"], rec["message"])


def _macs(model: str) -> float | None:
    try:
        return model_zoo.get_spec(model).reference.macs_m
    except ZooError:
        return None


def build(records: list[dict[str, Any]]) -> tuple[list[str], list[Row]]:
    """Columns (one per backend/device/precision/batch/threads seen) and rows sorted by best p50."""
    vary = {k for k in ("device", "precision", "batch", "threads") if len({r["job"][k] for r in records}) > 1}
    columns: list[str] = []
    rows: dict[str, Row] = {}
    for rec in records:
        job = rec["job"]
        label = column_label(job, vary)
        if label not in columns:
            columns.append(label)
        model = job["model"] + ("" if job["form"] == "fused" else f" ({job['form']})")
        row = rows.setdefault(model, Row(model, None, _macs(job["model"]), {}))
        if rec.get("model_info") and row.params is None:
            row.params = rec["model_info"].get("params")
        row.cells[label] = _cell(rec)
    order = {name: i for i, name in enumerate(registry.names())}
    columns.sort(key=lambda label: (order.get(label.split()[0], len(order)), label))
    return columns, sorted(rows.values(), key=lambda r: (r.best(), r.model))


def as_lists(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    columns, rows = build(records)
    header = ["model", "params (M)", "MACs (M)", *columns]
    body = [[r.model, "—" if r.params is None else f"{r.params / 1e6:.2f}", "—" if r.macs_m is None else f"{r.macs_m:.0f}",
             *[r.cells[c].text() if c in r.cells else "" for c in columns]] for r in rows]
    return header, body


def to_markdown(records: list[dict[str, Any]]) -> str:
    header, body = as_lists(records)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines) + f"\n\n{LEGEND}.\n"


def to_csv(records: list[dict[str, Any]]) -> str:
    """One line per job (tidy data), for spreadsheets and plots."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["model", "form", "backend", "device", "precision", "batch", "threads", "boundary", "status",
                     "p50_ms", "p90_ms", "ci_low_ms", "ci_high_ms", "spread", "unstable", "parity_passed", "params",
                     "message"])
    for rec in records:
        j, s, p = rec["job"], rec.get("stats") or {}, rec.get("parity")
        ms = lambda v: "" if v is None else f"{v / 1e6:.4f}"  # noqa: E731
        writer.writerow([j["model"], j["form"], j["backend"], j["device"], j["precision"], j["batch"], j["threads"],
                         j["boundary"], rec["status"], ms(s.get("p50")), ms(s.get("p90")), ms(s.get("ci_low")),
                         ms(s.get("ci_high")), "" if s.get("spread") is None else f"{s['spread']:.4f}",
                         int(rec["unstable"]), "" if p is None else int(p["passed"]),
                         (rec.get("model_info") or {}).get("params", ""), rec["message"]])
    return out.getvalue()
