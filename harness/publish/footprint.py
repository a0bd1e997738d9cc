"""What a deployment costs besides time, as the reports show it: the artifact's size, the memory it holds and
peaks at above the process's baseline, time to first result, energy (`harness.host.memory`, `.energy`).

Kept apart from the steady-state latency: `bench show` gives each job a footprint line, the CSV its columns,
the leaderboard a size-and-memory table beside the latency table."""

from __future__ import annotations

from harness.publish.tables import markdown as md_table
from harness.store.record import Record

# cold-start steps from an artifact on disk to a ready session; exports and quantization are builds
LOAD_KEYS = ("load_s", "convert_s", "compile_s", "capture_s")
CSV_HEADER = ["artifact_bytes", "memory_held_mb", "memory_peak_mb", "memory_method", "load_s", "first_inference_ms",
              "energy_per_inference_mj", "energy_missing"]


def load_s(rec: Record) -> float | None:
    steps = [rec.cold_start[k] for k in LOAD_KEYS if rec.cold_start.get(k) is not None]
    return sum(steps) if steps else None


def size_mb(rec: Record) -> float | None:
    size = rec.artifact.get("bytes")
    return None if size is None else size / 2**20


def _num(value: float | None, spec: str, none: str = "") -> str:
    return none if value is None else format(value, spec)


def line(rec: Record) -> str:
    """`bench show`'s footprint line of one job."""
    mem, cold, energy = rec.memory, rec.cold_start, rec.energy or {}
    size = size_mb(rec)
    parts = [f"artifact {size:.2f} MB" if size is not None else "no artifact file (the module itself)"]
    if mem is not None and mem.held_mb is not None:
        peak = f", peak {mem.peak_mb:.1f}" if mem.peak_mb is not None else f" (peak: {mem.peak_missing})"
        parts.append(f"holds {mem.held_mb:.1f} MB{peak} above a {mem.baseline_mb:.0f} MB baseline")
    loading = load_s(rec)
    if loading is not None:
        parts.append(f"load {loading:.3f} s")
    if cold.get("first_inference_ms") is not None:
        parts.append(f"first inference {cold['first_inference_ms']:.1f} ms")
    if "per_inference_mj" in energy:
        parts.append(f"{energy['per_inference_mj']:.3f} mJ/inference ({energy['source']}"
                     f"{', approximate' if energy.get('approximate') else ''})")
    elif energy.get("missing"):
        parts.append(f"energy: {energy['missing']}")
    return "footprint: " + " · ".join(parts)


def csv_fields(rec: Record) -> list[str]:
    mem, energy = rec.memory, rec.energy or {}
    return [str(rec.artifact.get("bytes") or ""), _num(mem and mem.held_mb, ".2f"), _num(mem and mem.peak_mb, ".2f"),
            "rss-delta" if mem and mem.method else "", _num(load_s(rec), ".4f"),
            _num(rec.cold_start.get("first_inference_ms"), ".2f"), _num(energy.get("per_inference_mj"), ".4f"),
            energy.get("missing", "")]


def table(records: list[Record]) -> tuple[list[str], list[list[str]]]:
    """The size and memory table: one row per measured job, beside the latency table."""
    header = ["model", "backend", "precision", "artifact MB", "held MB", "peak MB", "load s", "first inference ms"]
    rows = []
    for rec in records:
        if not rec.ok:
            continue
        j, mem = rec.job, rec.memory
        rows.append([j.model, j.backend, j.precision, _num(size_mb(rec), ".2f", "—"),
                     _num(mem and mem.held_mb, ".1f", "—"), _num(mem and mem.peak_mb, ".1f", "—"),
                     _num(load_s(rec), ".3f", "—"), _num(rec.cold_start.get("first_inference_ms"), ".1f", "—")])
    return header, rows


LEGEND = ("artifact = bytes on disk of what the runtime loads; held / peak = resident memory the deployment holds "
          "after opening and one inference / at most while timed, above the measuring process's baseline just "
          "before the backend opened it (median over processes; `bench show` names the method); load = artifact "
          "to ready session; first inference apart from the steady-state p50")


def markdown(records: list[Record]) -> str:
    header, rows = table(records)
    return f"\n### Size and memory\n\n{md_table(header, rows)}\n\n{LEGEND}.\n" if rows else ""
