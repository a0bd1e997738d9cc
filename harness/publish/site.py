"""The leaderboard as a static site (one `index.html`, its plots and the raw records, all local) and
as a Markdown page embedding the same plots.

Everything from a record (model names, messages, library versions) is escaped with `html.escape`;
the page has no external asset and no network request, so it works from a file, offline, in CI
artifacts. Sorting is a few lines of inline JavaScript over `data-sort` attributes. The site is built
in a sibling folder and renamed into place: an interrupted build leaves the previous site whole.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.publish import counted, footprint, int8, profile
from harness.publish.leaderboard import LEGEND, Cell, Row, build, markdown, ms_legend, relative_legend
from harness.publish.plots import draw_all, draw_int8, slug
from harness.store.accuracy_records import AccuracyRecord, record_path
from harness.store.profile_records import ProfileRecord
from harness.store.record import Record, records_of
from harness.store.records import atomic_write_text, replacing_folder

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;font-size:.9rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:right}
th{background:#f3f3f3;cursor:pointer;user-select:none;position:sticky;top:0}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}td.model,th.model{text-align:left}tr.highlight td.model{color:#b22;font-weight:600}
.flag{color:#b22;font-weight:700}.dim{color:#777;font-size:.8em}.reported{color:#777;font-style:italic}
figure{display:inline-block;margin:1rem}figure img{max-width:640px;border:1px solid #ddd}footer{margin-top:2rem;color:#555;font-size:.85rem}
"""

SCRIPT = """
document.querySelectorAll("table.board").forEach(function (sortable) {
 sortable.querySelectorAll("th").forEach(function (th, col) {  // col: the column within its own table
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var numeric = th.dataset.type === "num";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      if (numeric) {
        x = x === "" ? Infinity : parseFloat(x); y = y === "" ? Infinity : parseFloat(y);
        if (x === y) return 0;
        if (x === Infinity) return 1; if (y === Infinity) return -1;
        return asc ? x - y : y - x;
      }
      return asc ? x.localeCompare(y) : y.localeCompare(x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
 });
});
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _record_href(rec: Record) -> str:
    return f"records/{slug(rec.run_id)}/{slug(rec.job_id)}.json"


def joined_accuracy(rows: list[Row]) -> list[AccuracyRecord]:
    """The accuracy records the page's cells are joined to (the page links them)."""
    found = {id(c.accuracy): c.accuracy for r in rows for c in r.cells.values() if c.accuracy is not None}
    return list(found.values())


def _cell_html(cell: Cell | None) -> str:
    if cell is None:
        return '<td data-sort=""></td>'
    link = f'<a href="{esc(_record_href(cell.record))}">record</a>' if cell.record else ""
    if cell.status != "ok" or cell.p50_ms is None:
        return f'<td data-sort="" title="{esc(cell.message)}">{esc(cell.status)} <span class="dim">{link}</span></td>'
    flags = ("!" if cell.parity_failed else "") + ("~" if cell.unstable else "")
    ci = ""
    if cell.ci_ms:
        ci = f" ±{(cell.ci_ms[1] - cell.ci_ms[0]) / 2 / cell.p50_ms:.1%}"
    top1 = ""
    if cell.accuracy:
        href = "records/" + str(record_path(Path(), cell.accuracy))
        top1 = f'<br><span class="dim">top-1 <a href="{esc(href)}" title="{esc(cell.top1.source)}">{cell.top1.value:.1f}%</a></span>'
    flag = f' <span class="flag" title="{esc(cell.message or "unstable")}">{esc(flags)}</span>' if flags else ""
    return (f'<td data-sort="{cell.p50_ms:.6f}">{cell.p50_ms:.2f}{esc(ci)}{flag}'
            f'<br><span class="dim">p90 {cell.p90_ms:.2f} · {link}</span>{top1}</td>')


def _row_html(row: Row, columns: list[str]) -> str:
    top1 = ('<td data-sort="">—</td>' if row.top1 is None else
            f'<td data-sort="{row.top1.value:.3f}" title="{esc(row.top1.source)}"'
            f'{"" if row.top1.measured else " class=reported"}>{esc(row.top1.text())}</td>')
    params = "" if row.params is None else f"{row.params / 1e6:.2f}"
    macs = "" if row.macs_m is None else f"{row.macs_m:.0f}"
    cells = "".join(_cell_html(row.cells.get(c)) for c in columns)
    return (f'<tr class="{esc(row.family)}{" highlight" if row.highlight else ""}"><td class="model" data-sort="{esc(row.model)}">{esc(row.model)}</td>'
            f'<td data-sort="{params}">{params or "—"}</td><td data-sort="{macs}">{macs or "—"}</td>{top1}{cells}</tr>')


def _figure(files: list[str], what: str) -> str:
    return (f'<figure><img src="{esc(files[1])}" alt="{esc(what)}" width="640">'
            f'<figcaption>{esc(what)} · <a href="{esc(files[0])}">PNG</a> · <a href="{esc(files[1])}">SVG</a></figcaption></figure>')


def int8_html(rows: list[int8.Int8Row], plots: dict[str, list[str]], records: list[Record]) -> str:
    """The int8-beside-fp32 section (nothing when no int8 record has an fp32 partner)."""
    if not rows:
        return ""
    figures = "\n".join(_figure(files, f"fp32 → int8, {b}") for b, files in plots.items())
    return (_table_html("int8 beside fp32", f"{int8.LEGEND}. CPU: {int8.isa_line(records)}.", *int8.table(rows))
            + f"\n{figures}")


def counted_html(records: list[Record]) -> str:
    """The site's counted section: work per inference on a simulated CPU, where the runs were counted."""
    header, body = counted.table(records)
    return _table_html("Counted work per inference (simulated CPU, not time)", f"{counted.LEGEND}.", header, body) if body else ""


def footprint_html(records: list[Record]) -> str:
    """The size-and-memory section beside the latency table (nothing without a measured job)."""
    header, body = footprint.table(records)
    return _table_html("Size and memory", f"{footprint.LEGEND}.", header, body) if body else ""


def _table_html(title: str, legend: str, header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    lines = "\n".join("<tr>" + "".join(f'<td data-sort="{esc(c)}">{esc(c)}</td>' for c in line) + "</tr>" for line in body)
    return (f'<h2>{esc(title)}</h2>\n<p>{esc(legend)}</p>\n<table class="board"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{lines}\n</tbody></table>")


def render(columns: list[str], rows: list[Row], plots: dict[str, list[str]], hosts: list[str], runs: list[str],
           extra: str = "", legend: str = LEGEND) -> str:
    """The page's HTML (plots given as {column: [png, svg] relative paths}; `extra`: more sections, HTML)."""
    head = ('<th class="model" data-type="text">model</th><th data-type="num">params (M)</th>'
            '<th data-type="num">MACs (M)</th><th data-type="num">top-1 (%)</th>'
            + "".join(f'<th data-type="num">{esc(c)}</th>' for c in columns))
    body = "\n".join(_row_html(r, columns) for r in rows)
    figures = "\n".join(_figure(files, f"top-1 vs p50 latency, {c}") for c, files in plots.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>onebench leaderboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><h1>onebench leaderboard</h1>
<p>{esc(legend)}. Click a column to sort. Reparameterizable models (fused) are highlighted.</p>
<table class="board" id="leaderboard"><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table>
<h2>Accuracy vs latency</h2>
{figures or "<p>No model has both a measured latency and a top-1 yet.</p>"}
{extra}
<footer>Machines: {esc("; ".join(hosts))}. Runs: {esc(", ".join(runs))}.</footer>
<script>{SCRIPT}</script></body></html>
"""


def _host(rec: Record, brief: bool = False) -> str:
    """The machine a record ran on: CPU (+ GPU), with the OS unless `brief` (plot titles carry no kernel build)."""
    host = rec.host
    cpu = (host.get("cpu") or {}).get("model", "unknown CPU")
    gpu = (host.get("accelerator") or {}).get("name")
    machine = f"{cpu}{' + ' + gpu if gpu else ''}"
    return machine if brief else f"{machine} ({host.get('os', '?')})"


def _plot_machine(records: list[Record]) -> str:
    """The machine named in plot titles: one, briefly, or none when the records come from several."""
    machines = {_host(r, brief=True) for r in records}
    return machines.pop() if len(machines) == 1 else ""


def _reported(rows: list[Row]) -> dict[str, float]:
    """Each model's top-1 for the int8 plots' fp32 points where no int8 accuracy was measured."""
    return {r.model: r.top1.value for r in rows if r.top1 is not None}


MARKER = ".onebench-site"


def profiles_html(profiles: list[ProfileRecord]) -> str:
    """The "where the time goes" section: a link to each profile's page, with its op kinds' shares."""
    if not profiles:
        return ""
    items = "\n".join(
        f'<li><a href="profiles/{esc(rec.job_id)}.html">{esc(profile.title(rec))}</a>: '
        f'{esc(profile.kinds_brief(rec, 4))} '
        f'(<a href="profiles/{esc(rec.job_id)}.json">record</a>)</li>' for rec in profiles)
    return f"<h2>Where the time goes (profiles)</h2>\n<ul>\n{items}\n</ul>"


def write_site(records: Sequence[Record | Mapping[str, Any]], accuracy: list[AccuracyRecord], folder: Path,
               profiles: list[ProfileRecord] | None = None) -> Path:
    """Build the site into `folder` (replacing an earlier site there) and return its index.html; each
    profile gets its own page, linked from the index."""
    records = records_of(records)
    columns, rows = build(records, accuracy)
    hosts = sorted({_host(r) for r in records})
    with replacing_folder(folder, MARKER, "an onebench site", "--html") as staging:
        plots = draw_all(columns, rows, staging / "plots", _plot_machine(records))
        relative = {c: [str(p.relative_to(staging)) for p in files] for c, files in plots.items()}
        for rec in records:
            atomic_write_text(staging / _record_href(rec), json.dumps(rec.as_document(), indent=1))
        for rec in joined_accuracy(rows):
            atomic_write_text(staging / "records" / record_path(Path(), rec), json.dumps(rec.document, indent=1))
        quantized = int8.rows(records, accuracy)
        int8_plots = draw_int8(quantized, _reported(rows), staging / "plots", _plot_machine(records))
        extra = int8_html(quantized, {b: [str(p.relative_to(staging)) for p in files] for b, files in int8_plots.items()},
                          records) + footprint_html(records) + counted_html(records)
        for rec in profiles or []:
            atomic_write_text(staging / "profiles" / f"{rec.job_id}.html", profile.html_page(rec))
            atomic_write_text(staging / "profiles" / f"{rec.job_id}.json", json.dumps(rec.document, indent=1))
        runs = sorted({r.run_id for r in records})
        atomic_write_text(staging / "index.html", render(columns, rows, relative, hosts, runs,
                                                         extra + profiles_html(profiles or []), ms_legend(records)))
        (staging / MARKER).write_text("built by `bench leaderboard --html`; its own files (.onebench-files) are replaced on rebuild, any other file is kept\n")
    return folder / "index.html"


def write_markdown(records: Sequence[Record | Mapping[str, Any]], accuracy: list[AccuracyRecord], path: Path,
                   figure: str = "ms") -> Path:
    """The Markdown table (milliseconds, or relative figures) with its plots (latency, PNG embedded, SVG
    beside it) in `plots/` next to `path`."""
    records = records_of(records)
    columns, rows = build(records, accuracy)
    plots = draw_all(columns, rows, path.parent / "plots", _plot_machine(records))
    embedded = {c: str(files[0].relative_to(path.parent)) for c, files in plots.items()}
    quantized = int8.rows(records, accuracy)
    int8_plots = draw_int8(quantized, _reported(rows), path.parent / "plots", _plot_machine(records))
    legend = relative_legend(records) if figure == "relative" else ms_legend(records)
    table_columns, table_rows = build(records, accuracy, figure) if figure != "ms" else (columns, rows)
    atomic_write_text(path, markdown(table_columns, table_rows, embedded, legend) + int8.markdown(
        quantized, {b: str(files[0].relative_to(path.parent)) for b, files in int8_plots.items()}, records)
        + footprint.markdown(records) + counted.markdown(records))
    return path
