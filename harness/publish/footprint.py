"""What a deployment costs besides time, as the reports show it: the artifact's size, the memory it holds and
peaks at above the process's baseline, time to first result, energy (`harness.host.memory`, `.energy`).

Kept apart from the steady-state latency: `bench show` gives each job a footprint line, the CSV its columns,
the leaderboard a size-and-memory table beside the latency table."""

from __future__ import annotations

from typing import Any

from harness.publish.tables import markdown as md_table

# cold-start steps from an artifact on disk to a ready session; exports and quantization are builds
LOAD_KEYS = ("load_s", "convert_s", "compile_s", "capture_s")
CSV_HEADER = ["artifact_bytes", "memory_held_mb", "memory_peak_mb", "memory_method", "load_s", "first_inference_ms",
              "energy_per_inference_mj", "energy_missing"]


def load_s(rec: dict[str, Any]) -> float | None:
    cold = rec.get("cold_start") or {}
    steps = [cold[k] for k in LOAD_KEYS if cold.get(k) is not None]
    return sum(steps) if steps else None


def size_mb(rec: dict[str, Any]) -> float | None:
    size = (rec.get("artifact") or {}).get("bytes")
    return None if size is None else size / 2**20


def line(rec: dict[str, Any]) -> str:
    """`bench show`'s footprint line of one job."""
    mem, cold = rec.get("memory") or {}, rec.get("cold_start") or {}
    parts = []
    size = size_mb(rec)
    parts.append(f"artifact {size:.2f} MB" if size is not None else "no artifact file (the module itself)")
    if mem.get("held_mb") is not None:
        peak = f", peak {mem['peak_mb']:.1f}" if mem.get("peak_mb") is not None else f" (peak: {mem.get('peak_missing')})"
        parts.append(f"holds {mem['held_mb']:.1f} MB{peak} above a {mem['baseline_mb']:.0f} MB baseline")
    loading = load_s(rec)
    if loading is not None:
        parts.append(f"load {loading:.3f} s")
    if cold.get("first_inference_ms") is not None:
        parts.append(f"first inference {cold['first_inference_ms']:.1f} ms")
    energy = rec.get("energy") or {}
    if "per_inference_mj" in energy:
        parts.append(f"{energy['per_inference_mj']:.3f} mJ/inference ({energy['source']}"
                     f"{', approximate' if energy.get('approximate') else ''})")
    elif energy.get("missing"):
        parts.append(f"energy: {energy['missing']}")
    return "footprint: " + " · ".join(parts)


def csv_fields(rec: dict[str, Any]) -> list[str]:
    mem, energy, cold = rec.get("memory") or {}, rec.get("energy") or {}, rec.get("cold_start") or {}

    def num(value: float | None, digits: int = 3) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    loading = load_s(rec)
    return [str((rec.get("artifact") or {}).get("bytes") or ""), num(mem.get("held_mb"), 2), num(mem.get("peak_mb"), 2),
            "rss-delta" if mem.get("method") else "", num(loading, 4), num(cold.get("first_inference_ms"), 2),
            num(energy.get("per_inference_mj"), 4), energy.get("missing", "")]


def table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The size and memory table: one row per measured job, beside the latency table."""
    header = ["model", "backend", "precision", "artifact MB", "held MB", "peak MB", "load s", "first inference ms"]
    rows = []
    for rec in records:
        if rec.get("status") != "ok":
            continue
        j, mem, cold = rec["job"], rec.get("memory") or {}, rec.get("cold_start") or {}
        size, loading = size_mb(rec), load_s(rec)
        rows.append([j["model"], j["backend"], j["precision"], "—" if size is None else f"{size:.2f}",
                     "—" if mem.get("held_mb") is None else f"{mem['held_mb']:.1f}",
                     "—" if mem.get("peak_mb") is None else f"{mem['peak_mb']:.1f}",
                     "—" if loading is None else f"{loading:.3f}",
                     "—" if cold.get("first_inference_ms") is None else f"{cold['first_inference_ms']:.1f}"])
    return header, rows


LEGEND = ("artifact = bytes on disk of what the runtime loads; held / peak = resident memory the deployment holds "
          "after opening and one inference / at most while timed, above the measuring process's baseline just "
          "before the backend opened it (median over processes; `bench show` names the method); load = artifact "
          "to ready session; first inference apart from the steady-state p50")


def markdown(records: list[dict[str, Any]]) -> str:
    header, rows = table(records)
    return f"\n### Size and memory\n\n{md_table(header, rows)}\n\n{LEGEND}.\n" if rows else ""
