"""Leaderboard tables: models x backends, p50 with its CI, params, MACs, top-1 and trust flags.

A cell that failed parity or was unstable carries a flag in every format; models are sorted by their
fastest p50, and a fast but wrong or noisy number carries its flag wherever it lands. Top-1 is the
value measured through a cell's own artifact (`bench accuracy`, joined by `Record.artifact_key`)
where one exists, else the spec's reference figure labelled "reported" with its source: the two are
never mixed unlabelled.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import model_zoo
from backends import registry
from harness.measure.windows import MEANINGLESS_CI, STATISTIC, rel_halfwidth
from harness.publish import counted, footprint, tables
from harness.publish.tables import md_cell
from harness.store.accuracy_records import AccuracyRecord
from harness.store.accuracy_records import index as accuracy_index
from harness.store.job_key import KEY_FIELDS
from harness.store.record import JobKey, Record, Relative, Stats, records_of
from harness.store.records import machine_of
from harness.store.runs import reference_label
from model_zoo.errors import ZooError

# A CI wider than this (half-width relative to the value) says nothing about the value: it is never
# printed as if it did. The cell keeps its `~` and `bench show` has the figures.

LEGEND = (f"p50 in ms = {STATISTIC}, ± half-width of its 95% CI (\"±?\": the CI is wider than ±{MEANINGLESS_CI:.0%}, "
          "so no CI is shown); ! = failed parity, ~ = a caveat the ± does not carry (full speed reached in one process only, "
          "a busy machine, an unsettled warm-up: `bench show`), skip/error = no "
          "number; top-1 in %, measured through the timed artifact (`bench accuracy`) unless marked (reported); "
          "rows sorted by each model's fastest measured cell")


def ms_legend(records: Sequence[Record]) -> str:
    """The millisecond table's caption, with the CI target the runs' protocol aimed at (`--ci-target`)."""
    targets = sorted({float(r.protocol["target_rel_ci"]) for r in records if r.protocol.get("target_rel_ci")})
    if not targets:
        return LEGEND
    said = " and ".join(f"±{t:.1%}" for t in targets)
    return f"{LEGEND}; the protocol aimed at a CI of {said} (`bench run --ci-target`)"


@dataclass(frozen=True)
class Top1:
    """A top-1 accuracy in percent and whether onebench measured it or a paper reported it."""

    value: float
    measured: bool
    source: str  # the data set and image count, or where the reported figure comes from

    def text(self) -> str:
        return f"{self.value:.1f}" + ("" if self.measured else " (reported)")


def relative_legend(records: list[Record]) -> str:
    """The caption of a relative table: what a cell is and which pinned reference each figure is relative to,
    with the reference's own p50 (so a reader can get back to milliseconds)."""
    refs: dict[str, list[float]] = {}
    for rec in records:
        if rec.ok and rec.relative:
            refs.setdefault(reference_label(rec.relative.reference), []).append(rec.relative.reference_p50_ms)
    named = "; ".join(f"{label}, its own p50 {min(v):.2f}-{max(v):.2f} ms" if min(v) != max(v)
                      else f"{label}, its own p50 {v[0]:.2f} ms" for label, v in refs.items()) or "none in these runs"
    return (f"relative = the job's quiet-window p50 / its pinned reference's, timed beside it window by window in "
            f"the same process, ± half-width of its 95% CI; reference: {named}; ! = failed parity, "
            f"~ = a caveat the ± does not carry (`bench show`), — = not timed beside a reference (a GPU or phone job, `--reference none`, an older run); "
            f"rows sorted by each model's fastest measured cell")


@dataclass(frozen=True)
class Cell:
    status: str
    p50_ms: float | None = None  # the cell's figure: milliseconds, or the relative figure in a relative table
    p90_ms: float | None = None
    ci_ms: tuple[float, float] | None = None
    unstable: bool = False
    parity_failed: bool = False
    message: str = ""
    record: Record | None = None
    accuracy: AccuracyRecord | None = None  # the accuracy record joined to this cell's artifact
    relative: bool = False  # the figure is a relative one (a relative table), not milliseconds

    @property
    def top1(self) -> Top1 | None:
        """Top-1 measured through this cell's artifact, where an accuracy record is joined."""
        return _measured(self.accuracy)

    def text(self) -> str:
        if self.status != "ok":
            return self.status
        if self.p50_ms is None:
            return "—"
        flags = ("!" if self.parity_failed else "") + ("~" if self.unstable else "")
        ci = ""
        if self.ci_ms and self.p50_ms:
            half = rel_halfwidth(self.p50_ms, *self.ci_ms)
            ci = " ±?" if half > MEANINGLESS_CI else f" ±{half:.1%}"
        return (f"{self.p50_ms:.3f}x" if self.relative else f"{self.p50_ms:.2f}") + ci + flags


@dataclass
class Row:
    model: str
    params: int | None
    macs_m: float | None
    cells: dict[str, Cell]
    family: str = ""
    top1: Top1 | None = None  # the model's: PyTorch fp32 measured on its weights, else reported
    highlight: bool = False  # a reparameterizable model (the zoo says which): plots and the site mark it

    def top1_for(self, label: str) -> Top1 | None:
        """What a plot puts on this cell's y axis: its own measured top-1, else the model's."""
        cell = self.cells.get(label)
        return (cell.top1 if cell else None) or self.top1

    def best(self) -> float:
        """The fastest measured p50 (flags stay visible in the cell), inf when nothing ran."""
        return min((c.p50_ms for c in self.cells.values() if c.status == "ok" and c.p50_ms is not None), default=math.inf)


COLUMN_FIELDS = tuple(f for f in KEY_FIELDS if f not in ("model", "form", "backend"))  # what a column may differ by


def column_label(job: JobKey, vary: set[str], machine: str = "") -> str:
    """The backend, then each field that differs between the table's jobs (a CUDA run's `device` and
    `end-to-end` boundaries are two columns, never one cell overwritten by the other), then `@machine`
    where the records come from more than one machine (a cluster run)."""
    prefix = {"batch": "b", "threads": "t"}
    parts = [job.backend] + [prefix.get(k, "") + str(getattr(job, k)) for k in COLUMN_FIELDS if k in vary]
    return " ".join(parts + ([f"@{machine}"] if machine else []))


def _measured(acc: AccuracyRecord | None, reference: bool = False) -> Top1 | None:
    if acc is None:
        return None
    what = "PyTorch fp32 on the same images" if reference else f"{acc.job['backend']} {acc.job['precision']}"
    return Top1(100 * (acc.reference_top1 if reference else acc.top1), True, f"{what}: {acc.images} images of {acc.data_path}")


def _cell(rec: Record, acc: AccuracyRecord | None, figure: str = "ms") -> Cell:
    s, rel = rec.stats, rec.relative
    if not rec.ok or s is None:
        return Cell(rec.status, message=rec.message, record=rec)
    if figure == "relative":
        return Cell("ok", rel and rel.value, None, rel and rel.ci, bool(rec.caveats), rec.parity_failed, rec.message, rec,
                    acc, relative=True)
    return Cell("ok", s.p50_ms, s.p90_ms, s.ci_ms, bool(rec.caveats), rec.parity_failed, rec.message, rec, acc)


def _spec_facts(model: str) -> tuple[float | None, str, Top1 | None, bool]:
    """Reference MACs, family, reported top-1 and whether reparameterizable, of a registered model
    (nothing for unknown names)."""
    try:
        spec = model_zoo.get_spec(model)
    except ZooError:
        return None, "", None, False
    ref = spec.reference
    top1 = Top1(ref.top1, False, ref.source) if ref.top1 is not None else None
    return ref.macs_m, spec.family, top1, spec.reparameterizable


def build(records: Sequence[Record | Mapping[str, Any]], accuracy: list[AccuracyRecord] | None = None,
          figure: str = "ms") -> tuple[list[str], list[Row]]:
    """Columns (one per backend/device/precision/batch/threads seen) and rows sorted by best p50 (or best
    relative figure: `figure="relative"`).

    `accuracy` records are joined to the latency records that ran the same artifact.
    """
    records = records_of(records)
    joined = accuracy_index(accuracy or [])
    vary = {k for k in COLUMN_FIELDS if len({getattr(r.job, k) for r in records}) > 1}
    several = len({machine_of(r.host) for r in records}) > 1
    columns: list[str] = []
    rows: dict[str, Row] = {}
    for rec in records:
        job = rec.job
        label = column_label(job, vary, machine_of(rec.host) if several else "")
        if label not in columns:
            columns.append(label)
        model = job.model + ("" if job.form == "fused" else f" ({job.form})")
        if model not in rows:
            macs, family, reported, highlight = _spec_facts(job.model)
            rows[model] = Row(model, None, macs, {}, family, reported, highlight)
        row = rows[model]
        if row.params is None:
            row.params = rec.model_info.get("params")
        acc = joined.get(rec.artifact_key) if rec.ok else None
        row.cells[label] = _cell(rec, acc, figure)
        if acc is not None and (row.top1 is None or not row.top1.measured):
            row.top1 = _measured(acc, reference=True)
    order = {name: i for i, name in enumerate(registry.names())}
    columns.sort(key=lambda label: (order.get(label.split()[0], len(order)), label))
    return columns, sorted(rows.values(), key=lambda r: (r.best(), r.model))


def table(columns: list[str], rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and body of the built table, as text cells."""
    header = ["model", "params (M)", "MACs (M)", "top-1", *columns]
    body = [[r.model, "—" if r.params is None else f"{r.params / 1e6:.2f}", "—" if r.macs_m is None else f"{r.macs_m:.0f}",
             "—" if r.top1 is None else r.top1.text(),
             *[r.cells[c].text() if c in r.cells else "" for c in columns]] for r in rows]
    return header, body


def as_lists(records: Sequence[Record | Mapping[str, Any]], accuracy: list[AccuracyRecord] | None = None,
             figure: str = "ms") -> tuple[list[str], list[list[str]]]:
    return table(*build(records, accuracy, figure))


def markdown(columns: list[str], rows: list[Row], plots: dict[str, str] | None = None, legend: str = LEGEND) -> str:
    """The built table as Markdown, its legend, the sources of reported top-1, and the plots given as
    {column: image path}."""
    header, body = table(columns, rows)
    text = tables.markdown(header, body) + f"\n{legend}.\n"
    sources: dict[str, list[str]] = {}
    for row in rows:
        if row.top1 and not row.top1.measured:
            sources.setdefault(row.top1.source, []).append(row.model)
    if sources:
        text += "\nReported top-1 — " + "; ".join(f"{md_cell(', '.join(models))}: {md_cell(src)}"
                                                 for src, models in sources.items()) + ".\n"
    for column, image in (plots or {}).items():
        text += f"\n![top-1 vs p50 latency, {md_cell(column)}]({image})\n"
    return text


def to_markdown(records: Sequence[Record | Mapping[str, Any]], accuracy: list[AccuracyRecord] | None = None,
                figure: str = "ms") -> str:
    records = records_of(records)
    legend = relative_legend(records) if figure == "relative" else ms_legend(records)
    return markdown(*build(records, accuracy, figure), legend=legend)


def to_csv(records: Sequence[Record | Mapping[str, Any]], accuracy: list[AccuracyRecord] | None = None) -> str:
    """One line per job (tidy data), for spreadsheets and plots."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*KEY_FIELDS, "status",
                     "p50_ms", "p90_ms", "ci_low_ms", "ci_high_ms", "p50_all_iterations_ms", "windows_set_aside",
                     "spread", "unstable", "parity_passed", "params", "gflops", "peak_share", "top1_measured",
                     "top1_reported", "relative", "relative_ci_low", "relative_ci_high", "reference",
                     "reference_p50_ms", *footprint.CSV_HEADER, *counted.CSV_HEADER, "message", "machine"])
    joined = accuracy_index(accuracy or [])
    for rec in records_of(records):
        s, p = rec.stats, rec.parity
        writer.writerow([*rec.key, rec.status, *_stats_csv(s), int(rec.unstable), "" if p is None else int(p.passed),
                         rec.model_info.get("params", ""), _num(s and s.gflops, ""), _num(s and s.share_of_peak, ""),
                         _top1_csv(joined.get(rec.artifact_key)), _top1_csv(_spec_facts(rec.job.model)[2]),
                         *_relative_csv(rec.relative), *footprint.csv_fields(rec), *counted.csv_fields(rec), rec.message,
                         machine_of(rec.host)])
    return out.getvalue()


def _num(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _stats_csv(s: Stats | None) -> list[str]:
    """p50, p90, CI, all-iteration p50 (ms), the share of windows set aside and the spread."""
    if s is None:
        return [""] * 7
    ms = [None if v is None else v / 1e6 for v in (s.p50, s.p90, s.ci_low, s.ci_high, s.p50_all)]
    return [*(_num(v, ".4f") for v in ms), _num(s.set_aside_share, ".3f"), _num(s.spread, ".4f")]


def _relative_csv(rel: Relative | None) -> list[str]:
    if rel is None:
        return [""] * 5
    return [f"{rel.value:.4f}", _num(rel.ci_low, ".4f"), _num(rel.ci_high, ".4f"), reference_label(rel.reference),
            f"{rel.reference_p50_ms:.4f}"]


def _top1_csv(value: AccuracyRecord | Top1 | None) -> str:
    if value is None:
        return ""
    return f"{value.value:.3f}" if isinstance(value, Top1) else f"{100 * value.top1:.3f}"
