"""The environment a run measured on, captured once per run and copied into each record."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

from harness import PROJECT_ROOT, plugins
from harness.host import gpu

CORE_LIBRARIES = ("onebench", "torch", "timm", "numpy", "scipy")  # every backend's; each adds its `packages`
INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8",
                     "amx_tile", "neon", "asimd", "sve")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_info() -> dict[str, object]:
    model, flags = platform.processor() or platform.machine(), []
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            present = set(value.split())
            flags = [f for f in INTERESTING_FLAGS if f in present]
    if sys.platform == "darwin":
        try:
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                   timeout=5).stdout.strip() or model
        except (OSError, subprocess.SubprocessError):
            pass
    return {
        "model": model,
        "flags": flags,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "max_freq_mhz": (int(_read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") or 0) / 1000) or None,
    }


def libraries() -> tuple[str, ...]:
    """The distributions a run records: the core ones and every registered backend's runtime packages."""
    from backends import registry

    extra = {pkg for name in registry.names() for pkg in registry.get(name).packages}
    return CORE_LIBRARIES + tuple(sorted(extra - set(CORE_LIBRARIES)))


def library_versions() -> dict[str, str]:
    found = {}
    for name in libraries():
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def library_differences(mine: dict[str, str] | None, theirs: dict[str, str] | None) -> list[str]:
    """The libraries both sides have at different releases ("torch 2.9.0 here, 2.8.0 there"). A local build
    tag (torch's +cu128 / +cpu) is not a release: a GPU node's CUDA build and a Mac's wheel of the same
    release agree. A library only one side has is no difference (a Mac has no TensorRT)."""
    def release(v: str) -> str:
        return v.split("+", 1)[0]

    mine, theirs = mine or {}, theirs or {}
    return [f"{name} {release(mine[name])} here, {release(theirs[name])} there"
            for name in sorted(set(mine) & set(theirs)) if release(mine[name]) != release(theirs[name])]


def git_commit(root: Path = PROJECT_ROOT) -> dict[str, object]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def capture() -> dict[str, object]:
    """Everything about this machine and software that can change a timing."""
    mem = psutil.virtual_memory()
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "memory_gb": round(mem.total / 2**30, 1),
        "accelerator": gpu.device_info(),  # the NVIDIA GPU (nvidia-ml-py), or None
        "libraries": library_versions(),
        "project": git_commit(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
                                           "KMP_AFFINITY", "OMP_PROC_BIND") if k in os.environ},
        "plugins": plugins.named(),  # what ONEBENCH_PLUGINS loaded: models and backends from outside the project
    }
