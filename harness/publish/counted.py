"""Counted work per inference as reports show it (`bench run --counted`): `bench show`'s line, the counted table
(rich, Markdown, site) and its legend. Always labelled as work on a simulated CPU, never as time."""

from __future__ import annotations

from harness.publish.tables import markdown as md_table
from harness.store.record import Record

LEGEND = ("counted = work per inference under valgrind's callgrind on a fixed simulated CPU (its AVX2 kernels, "
          "32 KiB L1s, an 8 MiB LL; ASLR off): M instr = millions of instructions, L1 / LL = simulated cache "
          "misses, est. cycles = Ir + 10 x L1 misses + 100 x LL misses (KCachegrind's estimate); it repeats on a "
          "busy machine but is work, not time: never compare it with milliseconds")


def line(rec: Record) -> str | None:
    """`bench show`'s counted line, or None for a job that was not counted."""
    c = rec.counted
    if c is None:
        return None
    if c.missing:
        return f"counted: none ({c.missing})"
    return (f"counted (simulated CPU, not time): {c.instructions / 1e6:.2f} M instructions an inference, "
            f"L1 misses {c.l1_misses:,}, LL misses {c.ll_misses:,}, est. {c.cycles_estimated / 1e6:.2f} M cycles; "
            f"{c.valgrind}, two equal windows {c.wander:.4%} apart")


def table(records: list[Record]) -> tuple[list[str], list[list[str]]]:
    """One row per counted job."""
    header = ["model", "backend", "precision", "M instr", "L1 misses", "LL misses", "est. M cycles"]
    rows = []
    for rec in records:
        c = rec.counted
        if not rec.ok or c is None:
            continue
        j = rec.job
        if c.missing:
            rows.append([j.model, j.backend, j.precision, "—", "—", "—", f"not counted: {c.missing}"])
        else:
            rows.append([j.model, j.backend, j.precision, f"{c.instructions / 1e6:.2f}", f"{c.l1_misses:,}",
                         f"{c.ll_misses:,}", f"{c.cycles_estimated / 1e6:.2f}"])
    return header, rows


def markdown(records: list[Record]) -> str:
    header, rows = table(records)
    return f"\n### Counted work per inference (simulated CPU)\n\n{md_table(header, rows)}\n\n{LEGEND}.\n" if rows else ""


# CSV columns, named so no spreadsheet mistakes them for time: work per inference on the simulated CPU
CSV_HEADER = ["counted_instructions", "counted_l1_misses", "counted_ll_misses", "counted_cycles_estimated"]


def csv_fields(rec: Record) -> list[str]:
    c = rec.counted
    if c is None or c.missing:
        return [""] * len(CSV_HEADER)
    return [str(c.instructions), str(c.l1_misses), str(c.ll_misses), str(c.cycles_estimated)]
