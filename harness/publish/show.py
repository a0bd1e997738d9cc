"""The lines of `bench show`: one block per job, every number with its unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends.graph_rules import describe as describe_graph
from harness.host.machine import peak_key
from harness.measure.parity import describe as describe_parity
from harness.measure.windows import MEANINGLESS_CI, rel_halfwidth
from harness.publish import counted, footprint
from harness.store.record import Record, Stats, records_of
from harness.store.runs import reference_label


def _ms(ns: float | None) -> str:
    return "—" if ns is None else f"{ns / 1e6:.3f} ms"


def ci_text(s: Stats) -> str:
    """The 95% CI, or why there is none worth reading: one wider than ±50% of the value is not a ± of it."""
    half = rel_halfwidth(s.p50, s.ci_low, s.ci_high)
    if half == float("inf"):
        return "[no CI]"
    if half > MEANINGLESS_CI:
        return (f"[CI {_ms(s.ci_low)} – {_ms(s.ci_high)}: wider than ±{MEANINGLESS_CI:.0%}, so this p50 does "
                "not repeat; see the processes below]")
    return f"[CI {_ms(s.ci_low)} – {_ms(s.ci_high)}, ±{half:.1%}]"


def efficiency_text(rec: Record) -> str:
    """What the p50 means in work done: GFLOP/s, and the share of this machine's measured GEMM peak."""
    s, j = rec.stats, rec.job
    macs = rec.model_info["macs"]
    text = f"efficiency: {s.gflops:.1f} GFLOP/s ({2 * macs * j.batch / 1e9:.2f} GFLOP an inference)"
    key = peak_key(j.precision, j.threads)
    peak = (rec.host.get("peak_gflops") or {}).get(key)
    source = (rec.host.get("peak_source") or {}).get(key, "torch.mm")
    ceiling = f"this machine's {j.precision} GEMM peak ({peak:.0f} GFLOP/s on {j.threads} thread(s), {source})" if peak else ""
    if s.share_of_peak is not None and peak:
        text += f" = {s.share_of_peak:.1%} of {ceiling}"
    elif peak and s.gflops > peak:  # never a share above 100%: the count, not the runtime, is past the ceiling
        text += (f", past {ceiling}: it does less arithmetic than the direct convolutions counted (Winograd-style "
                 "kernels), so no share is given")
    return text


def _graph_line(graph: dict[str, Any]) -> str:
    ops = ", ".join(f"{k} {v}" for k, v in graph["ops"].items() if k != "const")
    if not graph.get("applies"):
        return f"    deployed graph: {ops}"
    return f"    deployed graph: {ops} · {describe_graph(graph)}"


def _gpu_line(state: dict[str, Any]) -> str:
    b, a = state.get("before") or {}, state.get("after") or {}
    parts = [f"SM clock {b.get('sm_clock_mhz', '?')} → {a.get('sm_clock_mhz', '?')} MHz",
             f"{b.get('temperature_c', '?')} → {a.get('temperature_c', '?')} °C"]
    parts += [f"{k} {v:.0f}" for k, v in state.items() if k not in ("before", "after") and isinstance(v, (int, float))]
    return " · ".join(parts)


def quantization_lines(rec: Record) -> list[str]:
    """An int8 job: the quantizer and its settings, the calibration (and whether its accuracy means
    anything), how much of the graph runs quantized, and what the runtime chose."""
    quant = rec.backend_info.get("quantization")
    if not quant:
        return []
    settings = ", ".join(f"{k} {v}" for k, v in quant.items() if k not in ("tool", "format", "calibration", "graph", "runtime"))
    calib = quant.get("calibration") or {}
    where = ("seeded RANDOM input: its accuracy means nothing, its latency holds" if not calib.get("meaningful")
             else f"{calib.get('source')}")
    lines = [f"    int8: {quant.get('format')} by {quant.get('tool')} ({settings})",
             f"    calibration: {calib.get('size')} images, {where} (sha256 {str(calib.get('sha256'))[:12]})"]
    for label, counts in (("quantized graph", quant.get("graph")), ("runtime chose", quant.get("runtime"))):
        if counts:
            lines.append(f"    {label}: " + " · ".join(f"{k.replace('_', ' ')} {_counts(v)}" for k, v in counts.items()))
    return lines


def _counts(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {v}" for k, v in value.items()) + "}" if value else "none"
    return str(value)


def job_lines(records: Sequence[Record | Mapping[str, Any]]) -> list[str]:
    lines = []
    for rec in records_of(records):
        lines.append(f"{rec.job.label}: {rec.status.upper()}")
        graph = rec.backend_info.get("graph")
        if not rec.ok or rec.stats is None:
            lines.append(f"    {rec.message}")
            if graph:
                lines.append(_graph_line(graph))
            continue
        lines += _measured_lines(rec, rec.stats)
        if graph:
            lines.append(_graph_line(graph))
        lines += quantization_lines(rec)
        for i, proc in enumerate(rec.processes):
            if proc.gpu:
                lines.append(f"    process {i} GPU: {_gpu_line(proc.gpu)}")
        if rec.parity:
            lines.append(f"    parity vs PyTorch fp32: {'PASS' if rec.parity.passed else 'FAIL'} · "
                         f"{describe_parity(rec.parity.as_dict())}")
        if rec.unstable:
            lines.append("    UNSTABLE: " + "; ".join(rec.unstable_reasons))
    return lines


def _measured_lines(rec: Record, s: Stats) -> list[str]:
    """A measured job's figures: p50 and its CI, efficiency, windows, the relative figure, processes, cold start, memory."""
    lines = [f"    p50 {_ms(s.p50)} {ci_text(s)} · p90 {_ms(s.p90)} · p99 {_ms(s.p99)} · min {_ms(s.min)} · "
             f"{s.throughput:.1f} img/s"]
    if s.gflops is not None:
        lines.append(f"    {efficiency_text(rec)}")
    if s.windows:
        lines.append(f"    p50 is the {s.statistic or 'quiet-window p50'}: {s.windows_set_aside} of {s.windows} "
                     f"windows set aside ({s.set_aside_share:.0%}); p50 of all iterations {_ms(s.p50_all)}")
    rel = rec.relative
    if rel:
        lines.append(f"    relative {rel.value:.3f}x [{rel.ci_low:.3f}-{rel.ci_high:.3f}] of the pinned reference "
                     f"{reference_label(rel.reference)}, its own p50 {rel.reference_p50_ms:.3f} ms, {rel.pairs} window pairs")
    medians = ", ".join(f"{m / 1e6:.3f}" for m in s.process_p50s)
    lines.append(f"    {s.processes} processes, each one's p50 [{medians}] ms, spread {s.spread:.1%} · "
                 f"{s.n} iterations · {s.outliers} outliers")
    policies = sorted({p.wait_policy for p in rec.processes if p.wait_policy})
    if policies:
        lines.append(f"    wait policy: {', '.join(policies)}")
    cold = ", ".join(f"{k} {v:.2f}" for k, v in rec.cold_start.items() if v is not None)
    rss = "" if rec.peak_rss_mb is None else f" · peak RSS {rec.peak_rss_mb:.0f} MB"
    work = counted.line(rec)
    return [*lines, f"    cold start: {cold}{rss}", f"    {footprint.line(rec)}", *([f"    {work}"] if work else [])]
