"""Machine-state signals around a measurement, so a disturbed job is marked, not published.

Shared hosts shift whole processes (a vCPU taken away, a noisy neighbour) in ways one process cannot
see in its own samples. Each process records load average, CPU steal time (/proc/stat), frequency
where readable, and fixed probes' speed; `disturbances` turns them into reasons.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STEAL_LIMIT = 0.02  # fraction of CPU time stolen by the hypervisor during the process
FREQ_CHANGE_LIMIT = 0.10


NEIGHBOUR_LIMIT = 0.25  # cores' worth of CPU used by other processes while a job was timed
HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuTimes:
    total: int
    steal: int
    busy: int  # user + nice + system + irq + softirq: time some process (ours or not) ran


def cpu_times() -> CpuTimes | None:
    """Aggregate jiffies from /proc/stat (None off Linux)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields] + [0] * 8
    return CpuTimes(sum(values[:8]), values[7], values[0] + values[1] + values[2] + values[5] + values[6])


def own_cpu_s() -> float:
    """CPU seconds this process (all its threads) has used."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_freq_mhz() -> float | None:
    for path in ("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq",):
        try:
            return int(Path(path).read_text()) / 1000
        except (OSError, ValueError):
            pass
    return None


@dataclass(frozen=True)
class Snapshot:
    time: float
    loadavg_1m: float
    cpu: CpuTimes | None
    freq_mhz: float | None
    own_cpu_s: float = 0.0


def snapshot() -> Snapshot:
    return Snapshot(time.time(), os.getloadavg()[0], cpu_times(), cpu_freq_mhz(), own_cpu_s())


def between(before: Snapshot, after: Snapshot) -> dict[str, float | None]:
    """The signals of one process, for its record."""
    steal = others = None
    if before.cpu and after.cpu and after.cpu.total > before.cpu.total:
        steal = (after.cpu.steal - before.cpu.steal) / (after.cpu.total - before.cpu.total)
        wall = after.time - before.time
        if wall > 0:
            others = max(0.0, ((after.cpu.busy - before.cpu.busy) / HZ - (after.own_cpu_s - before.own_cpu_s)) / wall)
    return {
        "loadavg_start": before.loadavg_1m, "loadavg_end": after.loadavg_1m, "steal_frac": steal,
        "others_cpu": others,
        "freq_mhz_start": before.freq_mhz, "freq_mhz_end": after.freq_mhz,
    }


def times_ns(fn, reps: int) -> list[int]:
    """Each of `reps` calls of `fn`, timed (ns): the probes' one timing loop."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return times


def _median_ns(fn, reps: int) -> float:
    return float(np.median(times_ns(fn, reps)[2:]))


PEAK_PRECISIONS = ("fp32", "bf16", "fp16")


def peak_key(precision: str, threads: int) -> str:
    """How a peak is named in `host.peak_gflops`: "fp32/1t"."""
    return f"{precision}/{threads}t"


PEAK_N = 1024  # the peak probe's square GEMM: 2.1 GFLOP, large enough for every core's vector units to run full


def peak_gflops(threads: int, precision: str) -> float:
    """This machine's attainable GFLOP/s on `threads` in `precision` right now: the best of a few large square
    GEMMs through torch (its BLAS / oneDNN), the ceiling a backbone's convolutions could reach. Measured once
    per run (~0.3 s), so a job's GFLOP/s can be read as a share of what the machine can do."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.ones(PEAK_N, PEAK_N, dtype=dtype)
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            best = min(times_ns(lambda: torch.mm(a, a), 8))
    finally:
        torch.set_num_threads(prev)
    return 2 * PEAK_N**3 / best


def probe(threads: int) -> dict[str, float]:
    """The machine's speed right now, on the job's threads (~40 ms): a cache-resident GEMM, and a small
    conv stack whose working set spills out of the caches the way a backbone's does.

    Measured here: stretches in which whole inference processes ran 1.5-3x slower while the GEMM did
    not move (a neighbour taking cache or memory bandwidth, not cores); the conv probe is there to
    see those. A 32 MB copy was tried for the same purpose and dropped: it varied by +-50% on its own.
    """
    import torch

    a = torch.ones(384, 384)
    x = torch.ones(1, 32, 56, 56)
    convs = torch.nn.Sequential(*[torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(6)]).eval()
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            return {"gemm_ns": _median_ns(lambda: torch.mm(a, a), 32), "conv_ns": _median_ns(lambda: convs(x), 12)}
    finally:
        torch.set_num_threads(prev)


def disturbances(processes: list[dict], cores: int) -> list[str]:
    """Reasons, from the per-process signals, to distrust a job's numbers."""
    reasons = []
    for i, p in enumerate(processes):
        m = p.get("machine", {})
        if (m.get("steal_frac") or 0) > STEAL_LIMIT:
            reasons.append(f"process {i}: {m['steal_frac']:.1%} of CPU time stolen by the hypervisor")
        if (m.get("others_cpu") or 0) > NEIGHBOUR_LIMIT:
            reasons.append(f"process {i}: other processes used {m['others_cpu']:.2f} cores while it was timed")
        if max(m.get("loadavg_start") or 0, m.get("loadavg_end") or 0) > cores + 1:
            reasons.append(f"process {i}: load average {max(m['loadavg_start'], m['loadavg_end']):.1f} on {cores} cores")
        f0, f1 = m.get("freq_mhz_start"), m.get("freq_mhz_end")
        if f0 and f1 and abs(f1 - f0) / f0 > FREQ_CHANGE_LIMIT:
            reasons.append(f"process {i}: CPU frequency moved {f0:.0f} -> {f1:.0f} MHz")
    return reasons
