"""Memory a deployment holds and peaks at, in the measuring process, from the kernel's own counters.

`peak_rss_mb` (the whole process's lifetime peak) says more about PyTorch and the harness than about the
model. What a record's `memory` block holds instead is attributable to the deployment:

- `baseline_mb`: resident memory (VmRSS) just before the backend opens the artifact, after freeing what the
  process no longer uses (`settle`: garbage, then the C heap's free pages, or the session would reuse them
  unseen and read low; measured: ONNX Runtime fp32 S0 held 17 MB without it, 40 MB in a fresh process): the
  interpreter, the
  imported runtimes and the PyTorch module the harness built (for the torch backends that module is the
  deployment's weights: `model_mb` says how much of the baseline they are);
- `held_mb`: RSS after the session opened and ran one inference, minus the baseline (steady state: weights,
  compiled kernels, arenas the runtime keeps);
- `peak_mb`: `held_mb` plus the largest transient growth while the timed inferences ran: the kernel's
  high-water mark (VmHWM), reset through /proc/self/clear_refs just before timing, over RSS at the reset.
  No sampling thread: nothing runs beside the timed loop, and no short peak is missed.

Where /proc is missing (macOS) held comes from psutil's RSS and the peak is left out, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 2**20
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
METHOD = ("RSS of the measuring process (VmRSS, /proc/self/status): held = after the session opened and ran once, "
          "minus just before it opened; peak = held plus the growth of the kernel's high-water mark (VmHWM, reset "
          "through /proc/self/clear_refs) over RSS at the start of the timed inferences")


def _status(field: str) -> int | None:
    try:
        found = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def settle() -> None:
    """Free what the process no longer uses before a baseline: Python's garbage, then the C heap's free pages
    back to the kernel (glibc `malloc_trim`), so memory freed earlier (an ONNX graph read, a parity forward) is
    not silently reused by the session and read as held by nobody."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the baseline is a little looser
        pass


def baseline_bytes() -> int:
    """RSS just before a backend opens, after `settle`."""
    settle()
    return rss_bytes()


def rss_bytes() -> int:
    """This process's resident memory now."""
    now = _status("VmRSS")
    if now is not None:
        return now
    import psutil

    return psutil.Process().memory_info().rss


def reset_peak() -> int | None:
    """Reset the kernel's high-water mark to the current RSS; the RSS it was reset to, or None where the
    kernel offers no reset (then no peak is recorded)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return None
    return _status("VmRSS")


def peak_bytes() -> int | None:
    return _status("VmHWM")


@dataclass
class Usage:
    """One process's memory above its baseline (`Tracker` fills it)."""

    baseline: int
    held: int | None = None
    reset_at: int | None = None  # RSS when the peak was reset (None: no reset possible)
    peak: int | None = None
    model: int | None = None  # bytes of the PyTorch module's parameters and buffers (in the baseline)

    def opened(self) -> None:
        """The session is open and has run once: what it holds now."""
        self.held = rss_bytes() - self.baseline

    def timing(self) -> None:
        """The timed inferences start (after anything built beside them, a reference workload): reset the peak."""
        self.reset_at = reset_peak()

    def timed(self) -> None:
        """The timed inferences are over: the growth of the high-water mark since the reset, above what it held."""
        high = peak_bytes() if self.reset_at is not None else None
        if high is not None and self.held is not None:
            self.peak = self.held + max(0, high - self.reset_at)

    def as_dict(self) -> dict[str, Any]:
        def mb(value: int | None) -> float | None:
            return None if value is None else round(value / MB, 2)

        out = {"baseline_mb": mb(self.baseline), "held_mb": mb(self.held), "peak_mb": mb(self.peak),
               "model_mb": mb(self.model), "method": METHOD}
        if self.peak is None:
            out["peak_missing"] = "the kernel's peak cannot be reset here (no /proc/self/clear_refs)"
        return out


def model_bytes(module: Any) -> int:
    """Parameters and buffers of a PyTorch module, in bytes."""
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def artifact_bytes(path: str | Path | None) -> int | None:
    """The bytes on disk of what a runtime loads: a file with its companions (an OpenVINO IR's .bin, an ONNX
    file's external data), or a folder (a Core ML package, an AOTInductor package) in full."""
    if not path:
        return None
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if not path.is_file():
        return None
    companions = [path.with_suffix(s) for s in (".bin",)] + [path.with_name(path.name + ".data")]
    return path.stat().st_size + sum(c.stat().st_size for c in companions if c.is_file())
