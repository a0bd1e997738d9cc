"""Test doubles for the runner: backends that misbehave the ways native runtimes do."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import numpy as np

from backends.base import Availability, Backend, JobSpec, OpenContext, Session
from backends.calibration import require
from backends.config import BackendConfig, option


class _Fake(Backend):
    description = "test double"
    devices = ("cpu",)
    precisions = ("fp32",)
    delay_s = 0.001

    def availability(self) -> Availability:
        return Availability(True, version="0")

    def open(self, model, job: JobSpec, ctx: OpenContext) -> Session:
        import torch

        def infer(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(x)).numpy()

        # The delay grows with the batch (so keys differ) and can be set or slowed from outside.
        base = float(os.environ.get("ONEBENCH_FAKE_DELAY_S", self.delay_s * job.batch ** 0.5))
        delay = base * (1 + float(os.environ.get("ONEBENCH_FAKE_SLOWDOWN", 0)))
        return Session(run=lambda: time.sleep(delay), infer=infer)


class Sleeps(_Fake):
    name = "fake-sleep"


class SleepsLonger(_Fake):
    """The same job 3x slower: a planted regression no scheduler jitter can hide."""

    name = "fake-sleep-slow"
    delay_s = 0.003


class Segfaults(_Fake):
    name = "fake-segfault"

    def open(self, model, job, ctx):
        os.kill(os.getpid(), signal.SIGSEGV)


class Hangs(_Fake):
    name = "fake-hang"

    def open(self, model, job, ctx):
        time.sleep(3600)


class HangsBeforeItsProcess(_Fake):
    """A runtime whose check hangs where a node runs it, before the step's own timed process starts (an
    import that waits on a lock, a driver probe): the node does not answer at all."""

    name = "fake-hang-check"

    def unsupported(self, job: JobSpec) -> str | None:
        time.sleep(3600)


class Raises(_Fake):
    name = "fake-raise"

    def open(self, model, job, ctx):
        raise RuntimeError("the runtime rejected the graph: Unsupported op Foo")


class WrongOutputs(_Fake):
    name = "fake-wrong"

    def open(self, model, job, ctx):
        session = super().open(model, job, ctx)
        session.infer = lambda x: np.random.default_rng(0).standard_normal((x.shape[0], 1000)).astype(np.float32)
        return session


class Missing(_Fake):
    name = "fake-missing"

    def availability(self) -> Availability:
        return Availability(False, "the Python package 'fakert' is not installed", "pip install fakert")


class DeviceTimed(_Fake):
    """A GPU-like session: `run` spans end-to-end, and a device timer that always reads 7 ms."""

    name = "fake-device-timer"
    DEVICE_NS = 7_000_000

    def open(self, model, job, ctx):
        session = super().open(model, job, ctx)
        session.boundary = "end-to-end"
        session.device_timer = lambda: self.DEVICE_NS
        session.memory = lambda: {"fake_peak_mb": 12.0}
        return session


class SlowIterations(_Fake):
    """90 ms an iteration: the default protocol's 0.4-s timing bound is reached after a handful of them
    (a large model at one thread, a slow laptop)."""

    name = "fake-slow-iteration"
    delay_s = 0.09


class NonFiniteInfo(_Fake):
    """A session whose reported details hold a NaN: the record the runner builds from it is invalid."""

    name = "fake-nan-info"

    def open(self, model, job, ctx):
        session = super().open(model, job, ctx)
        session.info = {"clock_ghz": float("nan")}
        return session


@dataclass(frozen=True)
class ConfiguredConfig(BackendConfig):
    """A backend's own options, as a new backend would add them: nothing in harness/ knows these fields."""

    tile: int = option(8, "a tuning knob that changes the artifact")
    collapse: bool = option(False, "int8: scramble the outputs, as a quantized model that collapsed does")
    refuse: bool = option(False, "int8: the quantizer refuses the model, as a runtime does for an op it cannot take")


class Configured(_Fake):
    """A backend with a typed configuration and an int8 path: its artifact is keyed by the configuration and
    the calibration set (by content), as the real quantizing backends' are."""

    name = "fake-configured"
    precisions = ("fp32", "int8")
    config = ConfiguredConfig

    def open(self, model, job, ctx):
        cfg: ConfiguredConfig = job.config(self)
        if cfg.refuse and job.precision == "int8":
            raise ValueError("Quantization of op 'Resize' is not supported\n(the quantizer's own traceback follows)")
        session = super().open(model, job, ctx)
        key = f"{ctx.weights_hash}-{job.precision}-{cfg.digest()}" + (f"-{ctx.calibration.digest[:12]}" if ctx.calibration else "")
        path = ctx.cache_dir / "fake" / f"{key}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * cfg.tile)
        session.artifact = {"path": str(path), "sha256": key}
        if job.precision == "int8":
            calibration = require(ctx.calibration, self.name)
            session.info["quantization"] = {"tool": "fake", "format": "none", "calibration": calibration.describe(),
                                            "graph": {"quantized_ops": 3, "float_ops": 1}}
            if cfg.collapse:  # every image confidently "class 0", as a quantized model that collapsed answers
                exact = session.infer
                session.infer = lambda x: np.where(np.arange(exact(x).shape[1]) == 0, 20.0, 0.0)[None].repeat(len(x), 0)
        return session


@dataclass(frozen=True)
class ProfilesConfig(BackendConfig):
    elsewhere: bool = option(False, "a runtime that times on another OS: converts, then cannot time here")


class Profiles(_Fake):
    """A backend with a profiler that reports known times: each inference one op per `Conv2d` of the model
    (named by its module, 0.1 ms times its position), a reorder no module claims, and the first op again
    (a second call of the same kernel); `-o fake-profiled.elsewhere=true` makes it one that cannot time here."""

    name = "fake-profiled"
    profiler = "a test double's timer"
    config = ProfilesConfig

    def open(self, model, job, ctx):
        from torch import nn

        from backends.base import SkipJob
        from backends.profiling import OpTime, Profiled

        if job.config(self).elsewhere:
            raise SkipJob("this runtime times on another OS (converted and checked here)")
        session = super().open(model, job, ctx)
        convs = [path for path, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        ops = [OpTime(name=f"node_{i}", op="Conv", ms=0.1 * (i + 1), exec="fake-kernel", layer=path)
               for i, path in enumerate(convs)]
        ops += [OpTime(name="inserted_reorder", op="Reorder", ms=0.05), ops[0]]

        def profile(n: int) -> Profiled:
            return Profiled("fake profiler 1.0", [list(ops) for _ in range(n)], [1.0] * n)

        session.profile = profile
        return session


class Allocates(_Fake):
    """A deployment of known size: it holds 64 MB (or the number in `fake-held-mb` in the job's cache folder: a
    file the measuring process reads now, where an environment variable would be the fork server's from its start)
    from open on, and each inference allocates 16 MB more for a moment."""

    name = "fake-alloc"

    def open(self, model, job, ctx):
        session = super().open(model, job, ctx)
        planted = ctx.cache_dir / "fake-held-mb"
        held = np.ones(int(float(planted.read_text() if planted.exists() else 64) * 2**20), dtype=np.uint8)  # resident
        transient = 16 * 2**20
        inner = session.run

        def run() -> None:
            scratch = np.ones(transient, dtype=np.uint8)
            inner()
            del scratch

        session.run, session.info = run, {"held_bytes": int(held.size)}
        session.close = lambda: held.fill(0)  # `held` lives as long as the session
        return session


ALL = {cls.name: f"tests.fake_backends:{cls.__name__}"
       for cls in (Sleeps, SleepsLonger, Segfaults, Hangs, HangsBeforeItsProcess, Raises, WrongOutputs, Missing, DeviceTimed, SlowIterations,
                   NonFiniteInfo, Configured, Profiles, Allocates)}


def register_all() -> None:
    """Make the doubles known (also used as an ONEBENCH_PLUGINS module: `tests.fake_backends_plugin`)."""
    from backends import registry

    for name, ref in ALL.items():
        if name not in registry.names():
            registry.register(name, ref)


def interrupted(payload: dict) -> str:
    """A measurement-process target hit by Ctrl-C: the process must ignore it and finish its job."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    return "finished"
