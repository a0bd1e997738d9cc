"""Energy per inference where a counter can be read, and where none can, the reason in one line.

- NVIDIA GPUs: NVML's total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the
  driver loaded; Volta and later) through nvidia-ml-py, read before and after the timed inferences. The
  counter is updated every few tens of milliseconds, so a span under `MIN_SPAN_S` is marked approximate.
- CPUs: RAPL through Linux powercap (`/sys/class/powercap/intel-rapl:N/energy_uj`, package domains; AMD Zen
  exposes the same interface), wrap-around handled with `max_energy_range_uj`. Many clouds hide it and
  recent kernels make it root-only: then the record says so.

No number is ever invented: a record gets joules from a counter, or `missing` with why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POWERCAP = Path("/sys/class/powercap")
MIN_SPAN_S = 1.0  # shorter spans than this are a handful of the counter's updates: approximate


@dataclass
class Counter:
    """A cumulative energy counter in joules (`read`), and what it is."""

    source: str
    read: Callable[[], float]


def _rapl(root: Path = POWERCAP) -> tuple[Counter | None, str]:
    if not root.is_dir():
        return None, f"no RAPL counter: {root} does not exist (a VM, a container without it, or not Linux)"
    packages = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not packages:
        return None, f"no RAPL package domain under {root}"
    try:
        ranges = [int((p / "max_energy_range_uj").read_text()) for p in packages]
        [int((p / "energy_uj").read_text()) for p in packages]
    except PermissionError:
        return None, f"RAPL is not readable by this user ({packages[0] / 'energy_uj'}: root only since Linux 5.10)"
    except (OSError, ValueError) as exc:
        return None, f"RAPL cannot be read ({type(exc).__name__}: {exc})"
    last = [int((p / "energy_uj").read_text()) for p in packages]
    total = [0.0]

    def read() -> float:  # joules since the counter was opened, each package's wrap-around undone
        for i, p in enumerate(packages):
            now = int((p / "energy_uj").read_text())
            total[0] += ((now - last[i]) % ranges[i]) / 1e6
            last[i] = now
        return total[0]

    return Counter(f"RAPL powercap, {len(packages)} package domain(s)", read), ""


def _nvml(index: int = 0) -> tuple[Counter | None, str]:
    import importlib.util

    from harness.host.gpu import _nvml as nvml_module  # the one NVML initialization

    nvml = nvml_module()
    if nvml is None:
        if importlib.util.find_spec("pynvml") is None:
            return None, "no GPU energy counter: nvidia-ml-py is not installed (pip install 'onebench[gpu]')"
        return None, "no GPU energy counter: NVML did not start (no NVIDIA driver or GPU)"
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # noqa: BLE001 - NVML's errors (not supported before Volta) are the reason
        return None, f"NVML has no energy counter here ({type(exc).__name__}: {str(exc)[:120]})"
    return Counter("NVML nvmlDeviceGetTotalEnergyConsumption", lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3), ""


def counter(device: str) -> tuple[Counter | None, str]:
    """The energy counter of a job's device, or (None, why there is none)."""
    return _nvml() if device == "cuda" else _rapl()


class Span:
    """Energy over the timed inferences of one process: `start()` before, `stop(inferences)` after."""

    def __init__(self, device: str, not_attributable: str | None = None) -> None:
        self.counter, self.missing = (None, not_attributable) if not_attributable else counter(device)
        self.joules0 = self.t0 = 0.0
        self.result: dict[str, Any] = {}

    def start(self) -> None:
        if self.counter:
            self.joules0, self.t0 = self.counter.read(), time.perf_counter()

    def stop(self, inferences: int) -> dict[str, Any]:
        if not self.counter:
            return {"missing": self.missing}
        joules, span = self.counter.read() - self.joules0, time.perf_counter() - self.t0
        return {"joules": round(joules, 6), "per_inference_mj": round(1e3 * joules / max(1, inferences), 6),
                "seconds": round(span, 4), "inferences": inferences, "source": self.counter.source,
                "approximate": span < MIN_SPAN_S}
