"""A planted regression for the gate's benchmarks: every CPU backend made N% slower, on one side only.

Loaded through `ONEBENCH_PLUGINS=benchmarks.slowdown_plugin` with `ONEBENCH_SLOWDOWN=0.10`, it
wraps onnxruntime, openvino and torch (`backends.registry.wrap`: their records say `wrapped_by`) with a wrapper whose `run` busy-waits
for that fraction of each inference's own time, so the slowdown scales with the model and moves with
the machine like a real one.

    bench ab -m mobileone_s0 -b onnxruntime \\
        --candidate env.ONEBENCH_PLUGINS=benchmarks.slowdown_plugin --candidate env.ONEBENCH_SLOWDOWN=0.10

For the counted gate, whose figure is work and not time, `ONEBENCH_EXTRA_LOOPS=N` plants work instead: N
iterations of an empty Python loop after each inference, the same instructions every time (20,000 are about
1.4 M instructions: ~2% of MobileOne-S0's inference on ONNX Runtime, 1.5% of MobileNetV2's), and no busy-wait.
"""

from __future__ import annotations

import os
import time

from backends import registry
from backends.base import Backend, Session


class Slowed(Backend):
    """A backend whose every inference takes (1 + ONEBENCH_SLOWDOWN) times as long."""

    inner_ref = ""
    # what the wrapped runtime declares, the wrapper declares too
    DECLARED = ("devices", "precisions", "packages", "preload", "layouts", "own_devices", "profiler",
                "layer_errors_by", "default_precision", "peak_probe", "config")

    def __init__(self) -> None:
        self.inner = registry.load(self.inner_ref)
        self.name, self.description = self.inner.name, self.inner.description + " (planted slowdown)"
        for declared in self.DECLARED:
            setattr(self, declared, getattr(self.inner, declared))

    def availability(self):
        return self.inner.availability()

    def unsupported(self, job):
        return self.inner.unsupported(job)

    def open(self, model, job, ctx) -> Session:
        session = self.inner.open(model, job, ctx)
        inner_run, clock = session.run, time.perf_counter_ns
        loops = int(os.environ.get("ONEBENCH_EXTRA_LOOPS", "0"))
        if loops:  # planted work: the same instructions every inference, whatever the clock says
            def more_work() -> None:
                inner_run()
                for _ in range(loops):
                    pass

            session.run = more_work
            session.info = {**session.info, "planted_work_loops": loops}
            return session
        extra = float(os.environ.get("ONEBENCH_SLOWDOWN", "0.1"))

        def run() -> None:
            t0 = clock()
            inner_run()
            until = clock() + int((clock() - t0) * extra)
            while clock() < until:
                pass

        session.run = run
        session.info = {**session.info, "planted_slowdown": extra}
        return session


class SlowedOnnxRuntime(Slowed):
    inner_ref = "backends.onnxruntime_cpu:OnnxRuntimeCPU"


class SlowedOpenVino(Slowed):
    inner_ref = "backends.openvino_cpu:OpenVinoCPU"


class SlowedTorch(Slowed):
    inner_ref = "backends.torch_eager:TorchEager"


for _cls in (SlowedOnnxRuntime, SlowedOpenVino, SlowedTorch):
    registry.wrap(_cls().name, f"{__name__}:{_cls.__name__}")
