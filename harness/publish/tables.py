"""The one table renderer: a header and rows of text cells, as Markdown or as a rich table.

Every report (leaderboard, compare, ablation) builds its cells once and renders them here, so the two
outputs cannot drift apart and every cell is escaped the same way: a model or backend name from a plugin
is untrusted text in both Markdown (renderers pass raw HTML through) and rich (markup in brackets)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from rich.markup import escape as rich_escape
from rich.table import Table

from model_zoo.names import printable


def escape(text: str) -> str:
    """A rich cell: markup escaped, control characters written as escapes (never raw on a terminal)."""
    return rich_escape(printable(text))


def md_cell(text: object) -> str:
    """A cell as Markdown text: HTML-escaped, `|` cannot split the row, one line."""
    return html.escape(printable(str(text).replace("\n", " ")), quote=False).replace("|", "\\|")


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> str:
    """A Markdown table; columns in `left` are left-aligned, the others (numbers) right-aligned."""
    lines = ["| " + " | ".join(map(md_cell, header)) + " |",
             "|" + "|".join("---" if i in left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(map(md_cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def rich_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = (0,),
               styles: Sequence[str] | None = None) -> Table:
    """The same table for the terminal; the first column never wraps, `styles` colours whole rows."""
    table = Table(title=escape(title))
    for i, col in enumerate(header):
        table.add_column(escape(col), justify="left" if i in left else "right", no_wrap=i == 0)
    for i, row in enumerate(rows):
        table.add_row(*(escape(cell) for cell in row), style=(styles[i] or None) if styles else None)
    return table
