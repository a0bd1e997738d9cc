"""Views of profile records: the top ops or layers, the op-kind summary, two profiles side by side with
what moved most, `bench show`'s lines and the site's page. Reads records only (no torch, no runtime)."""

from __future__ import annotations

import collections
import html
import json
from typing import Any

from harness.publish.tables import markdown
from harness.store.job_key import key_label
from harness.store.profile_records import ProfileRecord

DEFAULT_TOP = 15


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _gflops(flops: int | None, ms: float) -> str:
    return f"{flops / (ms * 1e6):.1f}" if flops and ms > 0 else "–"


def grouped(rows: list[dict[str, Any]], depth: int | None) -> list[dict[str, Any]]:
    """Rows merged by module path cut to `depth` parts (None: as recorded), in execution order; a merged
    row's kind is the one with most of its time, its op the distinct ops joined. A row no module claims
    (an inserted reorder, a generated kernel) keeps its own name."""
    if depth is None:
        return rows
    merged: dict[str, list[dict]] = {}
    for row in rows:
        label = ".".join(row["layer"].split(".")[:depth]) if row["layer"] else row["name"]
        merged.setdefault(label, []).append(row)
    out = []
    for label, members in merged.items():
        by_kind: collections.Counter[str] = collections.Counter()
        for m in members:
            by_kind[m["kind"]] += m["ms"]
        ops = list(dict.fromkeys(m["op"] for m in members))
        flops = [m["flops"] for m in members if m["flops"]]
        out.append({"layer": label, "name": label, "op": "+".join(ops[:4]) + ("+…" if len(ops) > 4 else ""),
                    "exec": ", ".join(dict.fromkeys(m["exec"] for m in members if m["exec"]))[:60],
                    "kind": by_kind.most_common(1)[0][0], "ms": sum(m["ms"] for m in members),
                    "flops": sum(flops) if flops else None})
    return out


def label(row: dict[str, Any]) -> str:
    """`stages.2.blocks.3 · Conv`: the module path and the runtime's op; the runtime's name where no module is known."""
    return f"{row['layer']} · {row['op']}" if row["layer"] and row["layer"] != row["name"] else row["name"]


def title(rec: ProfileRecord) -> str:
    return f"{key_label(rec.job)} — {rec.profiler.tool}"


def totals_line(rec: ProfileRecord) -> str:
    """The profiled inference beside the plain p50 of the same artifact, and what the ops account for."""
    t, p = rec.totals, rec.profiler
    what = "estimated shares of the measured time" if p.estimated else f"median of {p.iterations} profiled inferences"
    line = (f"profiled {_ms(t.profiled_wall_ms)} ms per inference ({what}) vs plain p50 {_ms(t.plain_p50_ms)} ms "
            f"({t.overhead:+.1%} profiler overhead); ops add up to {_ms(t.ops_ms)} ms")
    if t.coverage is not None and not p.estimated:
        line += f" ({t.coverage:.0%} of the profiled time; the rest is the runtime between ops)"
    return line + (f". Past ±15%: {t.why}" if t.why else "")


def layer_view(rec: ProfileRecord, top: int, depth: int | None) -> tuple[list[str], list[list[str]]]:
    rows = grouped(list(rec.rows), depth)
    total = sum(r["ms"] for r in rows) or 1.0
    ranked = sorted(rows, key=lambda r: -r["ms"])[:top]
    return (["layer · op", "kind", "kernel / unit", "ms", "share", "GFLOP/s"],
            [[label(r), r["kind"], r["exec"] or "–", _ms(r["ms"]), f"{r['ms'] / total:.1%}", _gflops(r["flops"], r["ms"])]
             for r in ranked])


def kind_view(rec: ProfileRecord) -> tuple[list[str], list[list[str]]]:
    """Op kinds by time; for an int8 job, how many ops of each kind ran integer kernels (the rest stayed float)."""
    quantized = rec.quantized
    return (["op kind", "ops", *(["int8 kernels"] if quantized else []), "ms", "share", "GFLOP/s"],
            [[k["kind"], str(k["count"]), *([f"{k.get('int8', 0)}/{k['count']}"] if quantized else []), _ms(k["ms"]),
              f"{k['share']:.1%}", _gflops(k.get("flops"), k["ms"])] for k in rec.kinds])


def _by(rec: ProfileRecord, by: str, depth: int | None) -> dict[str, float]:
    if by == "op":
        return {k["kind"]: k["ms"] for k in rec.kinds}
    out: dict[str, float] = collections.defaultdict(float)
    for row in grouped(list(rec.rows), depth):
        out[label(row)] += row["ms"]
    return out


def compare_view(a: ProfileRecord, b: ProfileRecord, by: str, top: int,
                 depth: int | None) -> tuple[list[str], list[list[str]]]:
    """Op kinds (or layers) of two profiles side by side, what moved most first (by |Δms|)."""
    left, right = _by(a, by, depth), _by(b, by, depth)
    total_a, total_b = sum(left.values()) or 1.0, sum(right.values()) or 1.0
    names = sorted(set(left) | set(right), key=lambda n: -abs(right.get(n, 0.0) - left.get(n, 0.0)))[:top]
    header = ["op kind" if by == "op" else "layer · op", "A ms", "A share", "B ms", "B share", "Δ ms (B − A)"]
    rows = [[n, _ms(left[n]) if n in left else "–", f"{left.get(n, 0.0) / total_a:.1%}",
             _ms(right[n]) if n in right else "–", f"{right.get(n, 0.0) / total_b:.1%}",
             f"{right.get(n, 0.0) - left.get(n, 0.0):+.3f}"] for n in names]
    rows.append(["total (ops)", _ms(total_a), "100%", _ms(total_b), "100%", f"{total_b - total_a:+.3f}"])
    return header, rows


def views(rec: ProfileRecord, by: str, top: int, depth: int | None,
          other: ProfileRecord | None = None) -> list[tuple[str, list[str], list[list[str]]]]:
    """The tables `bench profile` prints: (title, header, rows), in order."""
    if other is not None:
        return [(f"{kind}: A = {title(rec)}; B = {title(other)}", *compare_view(rec, other, key, top, depth))
                for kind, key in (("by op kind", "op"), ("by layer, what moved most", "layer"))
                if by == "layer" or key == "op"]
    tables = [(f"op kinds — {title(rec)}", *kind_view(rec))]
    if by == "layer":
        tables.append((f"top {top} {'layers' if depth else 'ops'} — {title(rec)}", *layer_view(rec, top, depth)))
    return tables


def to_markdown(rec: ProfileRecord, by: str, top: int, depth: int | None, other: ProfileRecord | None = None) -> str:
    parts = []
    for name, header, rows in views(rec, by, top, depth, other):
        parts.append(f"**{html.escape(name, quote=False)}**\n\n{markdown(header, rows)}")
    lines = [totals_line(rec)] + ([totals_line(other)] if other else [])
    return "\n".join(parts) + "\n" + "\n\n".join(f"_{html.escape(line, quote=False)}_" for line in lines) + "\n"


def to_json(rec: ProfileRecord, other: ProfileRecord | None = None) -> str:
    doc = rec.document if other is None else {"a": rec.document, "b": other.document}
    return json.dumps(doc, indent=1, allow_nan=False)


def kinds_brief(rec: ProfileRecord, n: int) -> str:
    """The `n` op kinds with most of the time and their shares, in a line."""
    return ", ".join(f"{k['kind']} {k['share']:.0%}" for k in rec.kinds[:n])


def show_lines(rec: ProfileRecord) -> list[str]:
    """`bench show`'s lines for one profile: what it is, its totals, the op kinds with most of the time."""
    return [f"profile {key_label(rec.job)} ({rec.profiler.tool})", f"  {totals_line(rec)}",
            f"  time by op kind: {kinds_brief(rec, 5)}"]


def html_page(rec: ProfileRecord, top: int = 30) -> str:
    """A profile's own page on the site (every text escaped)."""
    esc = html.escape
    sections = []
    for name, header, rows in views(rec, "layer", top, None):
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        sections.append(f"<h2>{esc(name)}</h2>\n<table class=\"board\"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title(rec))}</title></head>\n"
            f"<body><h1>{esc(title(rec))}</h1>\n<p>{esc(totals_line(rec))}</p>\n" + "\n".join(sections)
            + "\n<p><a href=\"../index.html\">leaderboard</a></p></body></html>\n")
