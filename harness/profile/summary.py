"""From profiled inferences to a profile: each op's median over the inferences, the op kinds' shares, the
profiled total beside the plain p50 of the same artifact.

An op is identified across inferences by (layer, runtime name, op type, its occurrence among identical
ones), so a kernel called fifteen times per inference is fifteen rows, each with its own median. The
record keeps every row in execution order; grouping by module depth and sorting are views
(`harness.publish.profile`).
"""

from __future__ import annotations

import collections
import re
import statistics
from typing import Any

from backends.profiling import OpTime, Profiled
from harness.profile.kinds import COMPUTE, Classifier

TOLERANCE = 0.15  # a profiled inference within this of the plain p50 needs no explanation
# An integer kernel, as each runtime names it: ONNX Runtime's QLinear*/QGemm/*Integer ops, oneDNN's
# `..._I8` / `..._U8` primitives in OpenVINO, PT2E's `onednn::qconv*` / `quantized::` calls.
_INTEGER = re.compile(r"qlinear|qgemm|integer|qconv|quantized::|_[iu]8\b|int8|u8s8", re.I)


def integer_kernel(op: str, exec: str) -> bool:
    """Whether a runtime op ran an integer (int8) kernel."""
    return bool(_INTEGER.search(f"{op} {exec}"))


def op_rows(profiled: Profiled, classifier: Classifier, flops: dict[str, int], scale_ms: float = 1.0) -> list[dict[str, Any]]:
    """One row per op in execution order: median ms over the inferences (an estimated profile's shares
    times `scale_ms`), kind, and the FLOPs of the module it ran in where it is a compute op."""
    times: dict[tuple, list[float]] = collections.defaultdict(list)
    first: dict[tuple, OpTime] = {}
    for ops in profiled.inferences:
        seen: collections.Counter[tuple] = collections.Counter()
        for op in ops:
            base = (op.layer, op.name, op.op)
            key = (*base, seen[base])
            seen[base] += 1
            times[key].append(op.ms)
            first.setdefault(key, op)
    credited: set[str] = set()
    rows = []
    for key, values in times.items():
        op = first[key]
        values += [0.0] * (len(profiled.inferences) - len(values))  # absent from an inference: it took no time there
        layer = classifier.owner(op.layer, op.op, op.shapes)
        kind = classifier.kind(layer, op.op, op.shapes)
        row_flops = None
        if kind in COMPUTE and layer in flops and layer not in credited:
            row_flops = flops[layer]
            credited.add(layer)
        rows.append({"layer": layer, "name": op.name, "op": op.op, "exec": op.exec, "kind": kind,
                     "ms": statistics.median(values) * scale_ms, "flops": row_flops, "int8": integer_kernel(op.op, op.exec)})
    return rows


def kind_table(rows: list[dict[str, Any]], model_flops: dict[str, int]) -> list[dict[str, Any]]:
    """Per kind: time, share of the ops' total, ops per inference (and how many ran integer kernels), the
    model's FLOPs of it and GFLOP/s."""
    total = sum(r["ms"] for r in rows) or 1.0
    grouped: dict[str, list[dict]] = collections.defaultdict(list)
    for row in rows:
        grouped[row["kind"]].append(row)
    table = []
    for kind, members in grouped.items():
        ms = sum(r["ms"] for r in members)
        flops = model_flops.get(kind)
        table.append({"kind": kind, "ms": ms, "share": ms / total, "count": len(members),
                      "int8": sum(r["int8"] for r in members), "flops": flops,
                      "gflops": flops / (ms * 1e6) if flops and ms > 0 else None})
    return sorted(table, key=lambda k: -k["ms"])


def totals(profiled: Profiled, rows: list[dict[str, Any]], plain_p50_ms: float) -> dict[str, Any]:
    """The profiled inference against the plain one: the profiler's overhead, stated; past the tolerance,
    by how much per recorded op."""
    wall = statistics.median(profiled.wall_ms)
    ops = sum(r["ms"] for r in rows)
    overhead = wall / plain_p50_ms - 1
    out: dict[str, Any] = {"plain_p50_ms": plain_p50_ms, "profiled_wall_ms": wall, "ops_ms": ops,
                           "overhead": overhead, "coverage": ops / wall if wall else None,
                           "within_tolerance": abs(overhead) <= TOLERANCE, "why": None}
    if not out["within_tolerance"]:
        per_op = (wall - plain_p50_ms) / max(len(rows), 1) * 1e3
        said = f"the profiled inference took {wall:.3g} ms against a plain p50 of {plain_p50_ms:.3g} ms ({overhead:+.0%})"
        if abs(ops / plain_p50_ms - 1) <= TOLERANCE:
            out["why"] = (f"{said}, while its {len(rows)} ops add up to {ops:.3g} ms ({ops / plain_p50_ms - 1:+.0%} against "
                          f"the plain p50): the per-op times hold, and the excess lies between the ops, the profiler "
                          f"recording them ({per_op:+.1f} µs per op)")
        else:
            out["why"] = (f"{said}: {per_op:+.1f} µs per recorded op beyond the plain run, inside the ops as well as "
                          "between them; the shares between ops hold better than the absolute times")
    return out
