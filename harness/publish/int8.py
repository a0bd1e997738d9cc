"""int8 beside fp32: for each model and backend, both latencies, the speed-up with its CI, and the
accuracy int8 costs (Δtop-1 against PyTorch fp32 on the same images, with its paired CI).

An int8 record is paired with the fp32 record of the same key (precision and backend options aside).
The speed-up comes from the int8 record's `speedup` when `bench int8` measured the two in lockstep
(alternating windows: it holds on a shared machine); otherwise from the two records' own p50s and CIs,
as a conservative interval (the ratio of the CI ends), marked "separate". Δtop-1 comes from the accuracy
record of the int8 artifact (`bench accuracy -p int8`). An int8 artifact calibrated on random input
has a valid latency and an accuracy that means nothing: its row says so in every format.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.publish import tables
from harness.publish.tables import md_cell
from harness.store.accuracy_records import AccuracyRecord
from harness.store.accuracy_records import index as accuracy_index
from harness.store.record import Record, Stats, records_of

PAIR_FIELDS = ("model", "form", "backend", "device", "batch", "threads", "boundary", "layout")
RANDOM_NOTE = "random calibration: accuracy meaningless"
LEGEND = ("speed-up = fp32 p50 / int8 p50 with its 95% CI (lockstep: the median of paired alternating windows' "
          "ratios, `bench int8`, its ms columns the medians of those windows; separate: two records' quiet-window p50s "
          "and their CIs, conservative); Δ top-1 = int8 minus PyTorch fp32 on the same images, "
          "points, paired 95% CI (`bench accuracy -p int8`); ! = int8 failed parity (collapsed: top-1 agreement or "
          "cosine below int8's tolerance); size, memory = int8's artifact bytes and the memory its deployment holds "
          "above the process's baseline, over fp32's")


@dataclass
class Int8Row:
    model: str
    backend: str
    options: str  # the int8 job's backend options ("" = defaults)
    fp32_ms: float | None
    int8_ms: float | None
    speedup: float | None
    speedup_ci: tuple[float, float] | None
    method: str  # "lockstep" or "separate"
    int8_status: str
    parity_failed: bool
    calibrated: bool  # False: calibrated on random input
    delta: dict[str, Any] | None  # the accuracy record's `paired`
    fp32_top1: float | None  # PyTorch fp32 top-1 on the accuracy images, %
    int8_top1: float | None
    quantized: str  # what ran quantized, e.g. "44/44 compute ops"
    message: str = ""
    size_ratio: float | None = None  # int8 artifact bytes / fp32's
    held_ratio: float | None = None  # memory the int8 deployment holds above baseline / fp32's

    @property
    def label(self) -> str:
        return self.backend + (f" ({self.options})" if self.options else "")


def _p50_ms(rec: Record | None) -> float | None:
    return rec.stats.p50_ms if rec is not None and rec.ok and rec.stats else None


def _separate(fp32: Stats, int8: Stats) -> tuple[float, tuple[float, float] | None]:
    ratio = fp32.p50 / int8.p50
    if None in (fp32.ci_low, fp32.ci_high, int8.ci_low, int8.ci_high):
        return ratio, None
    return ratio, (fp32.ci_low / int8.ci_high, fp32.ci_high / int8.ci_low)


def _quantized(rec: Record) -> str:
    quant = rec.backend_info.get("quantization") or {}
    counts = quant.get("runtime") if (quant.get("runtime") or {}).get("quantized_ops") is not None else quant.get("graph")
    if not counts or counts.get("quantized_ops") is None:
        return ""
    total = counts["quantized_ops"] + counts.get("float_ops", 0)
    return f"{counts['quantized_ops']}/{total}"


def rows(records: Sequence[Record | Mapping[str, Any]], accuracy: list[AccuracyRecord] | None = None) -> list[Int8Row]:
    """One row per int8 record that has an fp32 partner among `records`."""
    records = records_of(records)
    fp32 = {tuple(getattr(r.job, f) for f in PAIR_FIELDS): r for r in records
            if r.job.precision == "fp32" and not r.job.options}
    joined = accuracy_index(accuracy or [])
    out = []
    for rec in records:
        job = rec.job
        base = fp32.get(tuple(getattr(job, f) for f in PAIR_FIELDS)) if job.precision == "int8" else None
        if base is None:
            continue
        speedup, ci, method = None, None, ""
        paired = rec.speedup
        if paired and rec.ok:
            speedup, ci, method = paired["ratio"], (paired["ci_low"], paired["ci_high"]), "lockstep"
        elif _p50_ms(rec) and _p50_ms(base):
            (speedup, ci), method = _separate(base.stats, rec.stats), "separate"
        acc = joined.get(rec.artifact_key) if rec.ok else None
        fp32_ms, int8_ms = (paired["fp32_ms"], paired["int8_ms"]) if method == "lockstep" and "fp32_ms" in paired else (
            _p50_ms(base), _p50_ms(rec))
        out.append(Int8Row(
            job.model, job.backend, job.options, fp32_ms, int8_ms, speedup, ci, method, rec.status, rec.parity_failed,
            bool((rec.calibration or {}).get("meaningful")), acc.paired if acc else None,
            100 * acc.reference_top1 if acc else None, 100 * acc.top1 if acc else None,
            _quantized(rec) if rec.ok else "", rec.message, _ratio(rec, base, lambda r: r.artifact.get("bytes")),
            _ratio(rec, base, lambda r: r.memory and r.memory.held_mb)))
    return sorted(out, key=lambda r: (r.model, r.backend, r.options))


def _ratio(int8: Record, fp32: Record, figure: Callable[[Record], float | None]) -> float | None:
    a, b = figure(int8), figure(fp32)
    return a / b if a is not None and b else None


def speedup_text(row: Int8Row) -> str:
    if row.speedup is None:
        return row.int8_status if row.int8_status != "ok" else "—"
    ci = f" [{row.speedup_ci[0]:.2f}, {row.speedup_ci[1]:.2f}]" if row.speedup_ci and all(map(math.isfinite, row.speedup_ci)) else ""
    return f"{row.speedup:.2f}×{ci} {row.method}"


def delta_text(row: Int8Row) -> str:
    if row.delta is None:
        return "not measured"
    d = row.delta
    text = f"{d['delta_top1'] * 100:+.1f} [{d['ci_low'] * 100:+.1f}, {d['ci_high'] * 100:+.1f}]"
    return text + ("" if row.calibrated else f" ({RANDOM_NOTE})")


def table(rows_: list[Int8Row]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "backend", "fp32 ms", "int8 ms", "speed-up [95% CI]", "top-1 fp32 → int8", "Δ top-1 pt [95% CI]",
              "quantized ops", "calibration", "size, memory int8/fp32"]
    body = []
    for r in rows_:
        top1 = f"{r.fp32_top1:.1f} → {r.int8_top1:.1f}" if r.fp32_top1 is not None and r.int8_top1 is not None else "—"
        body.append([r.model, r.label, "—" if r.fp32_ms is None else f"{r.fp32_ms:.2f}",
                     ("—" if r.int8_ms is None else f"{r.int8_ms:.2f}") + ("!" if r.parity_failed else ""),
                     speedup_text(r), top1, delta_text(r), r.quantized or "—",
                     "images" if r.calibrated else "random (latency only)",
                     " / ".join("—" if x is None else f"{x:.2f}" for x in (r.size_ratio, r.held_ratio))])
    return header, body


INT8_ISA = {"avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8"}


def isa_line(records: list[Record]) -> str:
    """What int8 instructions the records' CPUs have: VNNI/AMX run int8 dot products in one instruction;
    without them int8 convolutions emulate it (pmaddubsw) and often gain little over fp32."""
    lines = []
    for model, rec in {(r.host.get("cpu") or {}).get("model", "?"): r for r in records}.items():
        flags = (rec.host.get("cpu") or {}).get("flags") or []
        have = [name for flag, name in INT8_ISA.items() if flag in flags]
        lines.append(f"{model}: int8 instructions {', '.join(have) if have else 'none of VNNI/AMX (int8 is emulated)'}")
    return "; ".join(lines)


def markdown(rows_: list[Int8Row], plots: dict[str, str] | None = None, records: list[Record] | None = None) -> str:
    if not rows_:
        return ""
    text = "\n### int8 beside fp32\n\n" + tables.markdown(*table(rows_)) + f"\n{LEGEND}.\n"
    if records:
        text += f"\nCPU: {isa_line(records)}.\n"
    for backend, image in (plots or {}).items():
        text += f"\n![top-1 vs p50 latency, fp32 and int8, {md_cell(backend)}]({image})\n"
    return text


LAYER_ROWS = 10


def _worst_first(diagnosis: dict[str, Any]) -> list[dict[str, Any]]:
    """By the SQNR a layer's own quantization leaves where the runtime separates it (ONNX Runtime's QDQ
    steps), else by how much of the accumulated SQNR is lost at that layer (`drop_db`)."""
    def key(row: dict[str, Any]) -> float:
        if row.get("qdq_sqnr_db") is not None:
            return row["qdq_sqnr_db"]
        return -row["drop_db"] if row.get("drop_db") is not None else math.inf

    return sorted(diagnosis["activations"], key=key)


def _conv_of(row: dict[str, Any], spread: dict[str, float]) -> str:
    """The convolution (module name) that computes a diagnosed activation; a convolution with a folded batch
    norm carries the norm's name in the graph: its sibling's."""
    conv = row.get("compute_layer") or ""
    if conv and conv not in spread:
        siblings = [k for k in spread if k.rpartition(".")[0] == conv.rpartition(".")[0]]
        conv = siblings[0] if len(siblings) == 1 else conv
    return conv


def worst_layers(diagnosis: dict[str, Any], k: int) -> list[str]:
    """The `k` convolutions whose int8 outputs lose the most signal (by the SQNR their own quantization
    leaves), as module names for `-o int8.float_layers`: the diagnosis's mixed-precision repair."""
    spread, names = diagnosis.get("weight_spread", {}), []
    for row in _worst_first(diagnosis):
        conv = _conv_of(row, spread)
        if conv in spread and conv not in names:
            names.append(conv)
    return names[:k]


def layer_table(diagnosis: dict[str, Any], rows: int = LAYER_ROWS) -> tuple[list[str], list[list[str]]]:
    """The worst layers of an accuracy record's `layers` diagnosis (`_worst_first`), with the error
    accumulated to them and the weight spread of their convolution."""
    def db(value: float | None) -> str:
        return "∞" if value is None else f"{value:.1f}"

    spread = diagnosis.get("weight_spread", {})

    def weights(row: dict[str, Any]) -> str:
        conv = _conv_of(row, spread)
        return f"{conv} {spread[conv]:.1f}" if conv in spread else "—"

    separated = any(r.get("qdq_sqnr_db") is not None for r in diagnosis["activations"])
    own = "SQNR added (dB)" if separated else "SQNR lost here (dB)"

    def here(row: dict[str, Any]) -> str:
        if separated:
            return db(row["qdq_sqnr_db"])
        return "—" if row.get("drop_db") is None else f"{row['drop_db']:.1f}"

    body = [[r["layer"], r["op"], str(r["depth"]), here(r), db(r["sqnr_db"]), weights(r)]
            for r in _worst_first(diagnosis)[:rows]]
    return ["layer", "op", "depth", own, "SQNR to fp32 (dB)", "its conv: weight max/median"], body
