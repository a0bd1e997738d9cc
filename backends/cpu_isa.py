"""Whether this CPU multiplies int8 with a dot-product instruction (VNNI, AMX).

Without one, x86 int8 kernels multiply unsigned activations by signed weights into saturating 16-bit
sums (`vpmaddubsw`), and full 8-bit ranges can overflow them: a quantized network then loses accuracy the
same model keeps on a VNNI machine (measured: a digits CNN lost 7-9 points of top-1 on an AVX2-only EPYC
through ONNX Runtime and PT2E, none with VNNI). The quantizers' documented answer is 7-bit ranges
(`reduce_range`), which the int8 backends turn on by default where this says there is no dot product.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.cache
def int8_dot_product() -> bool:
    """True on a CPU with VNNI or AMX, and off x86 (ARM's int8 dot products do not saturate this way)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return True
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return True  # not Linux: no way to tell here, so the quantizer's own default
    return any(flag in flags for flag in INT8_DOT_PRODUCT)


def reduce_range(choice: str) -> bool:
    """A backend's `reduce_range` option resolved: "auto" is on exactly where the CPU has no int8 dot product."""
    return {"on": True, "off": False}.get(choice, not int8_dot_product())
