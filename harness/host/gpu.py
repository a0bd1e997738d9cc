"""NVIDIA GPU state around a measurement (nvidia-ml-py), so a throttled or heating GPU is flagged.

GPU timings move with SM clock and temperature: a GPU that boosts at the start of a job and throttles
by its end gives a number that belongs to neither state. Each CUDA process records name, driver,
CUDA/cuDNN versions, clocks, temperature and power at start and end, and its peak memory; `changes`
turns a drift into `unstable` reasons. Every function returns None / {} where NVML is missing.
"""

from __future__ import annotations

import os
from typing import Any

CLOCK_CHANGE_LIMIT = 0.05  # relative SM clock change during a process
TEMP_CHANGE_LIMIT_C = 10.0


def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001 - no package, no driver, no GPU: telemetry is optional
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def device_info(index: int = 0) -> dict[str, Any] | None:
    """What stays fixed during a run: name, driver, memory, CUDA/cuDNN builds (host record); without NVML,
    what torch knows of the device (name, memory), so a CUDA record always names its GPU; None without one."""
    nvml = _nvml()
    if nvml is None:
        return _torch_device_info(index)
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    info: dict[str, Any] = {
        "name": _text(nvml.nvmlDeviceGetName(handle)),
        "driver": _text(nvml.nvmlSystemGetDriverVersion()),
        "memory_gb": round(nvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30, 1),
        "cuda_driver": nvml.nvmlSystemGetCudaDriverVersion_v2(),
    }
    try:
        import torch

        info.update(torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    except Exception:  # noqa: BLE001
        pass
    return info


def _torch_device_info(index: int) -> dict[str, Any] | None:
    import sys

    torch = sys.modules.get("torch")  # never imported here for this: a CPU-only record does not pay for torch
    if torch is None or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(index)
    return {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1), "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "source": "torch (nvidia-ml-py is not installed: no driver figures)"}


def snapshot(index: int = 0) -> dict[str, Any]:
    """Clocks, temperature, power and this process's GPU memory now."""
    nvml = _nvml()
    if nvml is None:
        return {}
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    state = {
        "sm_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "mem_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
        "temperature_c": nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        "power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000,
    }
    try:
        used = [p.usedGpuMemory for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle) if p.pid == os.getpid()]
        state["process_memory_mb"] = used[0] / 2**20 if used and used[0] is not None else None
    except Exception:  # noqa: BLE001 - not every driver reports per-process memory
        state["process_memory_mb"] = None
    return state


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Reasons a process's GPU state moved enough to distrust its number."""
    reasons = []
    b, a = before.get("sm_clock_mhz"), after.get("sm_clock_mhz")
    if b and a and abs(a - b) / b > CLOCK_CHANGE_LIMIT:
        reasons.append(f"GPU SM clock changed {b} → {a} MHz during the job (boost or throttling)")
    b, a = before.get("temperature_c"), after.get("temperature_c")
    if b is not None and a is not None and abs(a - b) > TEMP_CHANGE_LIMIT_C:
        reasons.append(f"GPU temperature changed {b} → {a} °C during the job")
    return reasons
