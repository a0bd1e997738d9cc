"""A job's memory and energy, pooled over its processes: the record's `memory` and `energy` blocks.

Each timed process measures its own (`harness.host.memory`, `harness.host.energy`); the job's figure is the
median over its processes, with the range beside it, the way latency is pooled."""

from __future__ import annotations

import statistics
from typing import Any


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known and len(known) == len(values) else None


def memory_of(processes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Median held and peak memory above baseline over the processes that measured it (None: none did)."""
    measured = [p["memory"] for p in processes if p.get("memory")]
    if not measured:
        return None
    held = [m.get("held_mb") for m in measured]
    out = {key: _median([m.get(key) for m in measured]) for key in ("held_mb", "peak_mb", "baseline_mb", "model_mb")}
    known = [h for h in held if h is not None]
    out.update(processes=len(measured), held_range_mb=[min(known), max(known)] if known else None,
               method=measured[0]["method"])
    if out["peak_mb"] is None:
        out["peak_missing"] = next((m["peak_missing"] for m in measured if m.get("peak_missing")), "not measured")
    return out


def energy_of(processes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Median energy per inference over the processes whose counter read it; else why it is missing."""
    spans = [p["energy"] for p in processes if p.get("energy")]
    if not spans:
        return None
    read = [s for s in spans if "per_inference_mj" in s]
    if not read:
        return {"missing": spans[0]["missing"]}
    return {"per_inference_mj": _median([s["per_inference_mj"] for s in read]), "source": read[0]["source"],
            "processes": len(read), "approximate": any(s["approximate"] for s in read)}
