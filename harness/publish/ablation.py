"""`bench ablation activations|blocks`: the paper's bottleneck analyses on any backend.

The variants are ordinary zoo models (`ablation_act_*`, `ablation_block_*`), measured by the ordinary
runner, so their records join leaderboards, comparisons and history like any other. This module
only plans them and lays the results out as the paper's tables: p50 per variant and backend, and its
ratio to the ReLU (activations) or plain (blocks) network on the same backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.publish import tables
from harness.store.record import Record, records_of
from model_zoo.ablation import STUDIES, model_name, variant_of


def study(kind: str) -> tuple[tuple[str, ...], str]:
    """The variants of the paper's study `kind` and its baseline."""
    if kind not in STUDIES:
        raise HarnessError(f"unknown ablation {kind!r}; choose {' or '.join(STUDIES)}")
    return STUDIES[kind]


def models(kind: str) -> list[str]:
    """The zoo names the study times."""
    return [model_name(kind, n) for n in study(kind)[0]]


@dataclass(frozen=True)
class AblationCell:
    text: str
    ratio: float | None


def table(kind: str, records: Sequence[Record | Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per variant, one column per backend, 'p50 ±CI (x ratio)'."""
    names, base = study(kind)
    backends: list[str] = []
    by_key: dict[tuple[str, str], Record] = {}
    for rec in records_of(records):
        if rec.job.backend not in backends:
            backends.append(rec.job.backend)
        by_key[(variant_of(kind, rec.job.model), rec.job.backend)] = rec
    rows = [[name, *(_cell(by_key.get((name, backend)), by_key.get((base, backend))) for backend in backends)]
            for name in names]
    return ["variant", *backends], rows


def _cell(rec: Record | None, baseline: Record | None) -> str:
    if rec is None:
        return ""
    if not rec.ok or rec.stats is None:
        return rec.status
    s = rec.stats
    half = (s.ci_high - s.ci_low) / 2 / s.p50 if s.ci_ms is not None else None
    text = f"{s.p50_ms:.2f}" + (f" ±{half:.1%}" if half is not None else "")
    if baseline is not None and baseline.ok and baseline.stats:
        text += f" (×{s.p50 / baseline.stats.p50:.2f})"
    return text + ("~" if rec.unstable else "") + ("!" if rec.parity_failed else "")


def to_markdown(kind: str, records: Sequence[Record | Mapping[str, Any]]) -> str:
    header, rows = table(kind, records)
    base = study(kind)[1]
    return tables.markdown(header, rows) + f"\np50 ms ± half-width of its 95% CI (× ratio to {base} on the same backend); ~ unstable, ! failed parity.\n"
