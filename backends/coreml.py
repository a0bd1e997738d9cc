"""Core ML: its availability on this machine. Conversion and timing come with the CoreML issue (#8).

Core ML predicts only on macOS and iOS; elsewhere every job is a `skipped` record saying so.
"""

from __future__ import annotations

import sys

from torch import nn

from backends.base import Availability, JobSpec, OpenContext, Session, module_availability

INSTALL = "pip install 'onebench[coreml]'"


class CoreML:
    name = "coreml"
    description = "Core ML (macOS / iOS)"
    devices = ("cpu", "ane", "gpu")
    precisions = ("fp16", "fp32")

    def availability(self) -> Availability:
        if sys.platform != "darwin":
            return Availability(False, f"Core ML prediction needs macOS or iOS (this is {sys.platform}); "
                                "onebench does not convert or time Core ML yet")
        avail = module_availability("coremltools", INSTALL)
        if avail.ok:
            return Availability(False, "Core ML timing is not implemented yet in onebench", "")
        return avail

    def unsupported(self, job: JobSpec) -> str | None:
        return self.availability().reason or None

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        raise RuntimeError(self.availability().reason)
