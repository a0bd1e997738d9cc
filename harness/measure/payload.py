"""What a process of one job receives: the typed payload of every step.

Every launcher target (prepare, measure, build, profile, the phone's runner, a counted child) and every
resident lockstep side opens its job from a `JobPayload`. Within one onebench it travels pickled (a fork
server's child, a Ray node); to another interpreter (a lockstep side's `python=`, the child valgrind runs)
as JSON, through `as_dict` and `of`, which are each other's inverse.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import model_zoo
from backends import registry
from backends.calibration import CalibrationSpec
from harness.measure.jobs import Job
from harness.measure.protocol import ProtocolConfig


def model_module(name: str) -> str | None:
    """The module whose import registered model `name` here, where that is neither the zoo nor timm."""
    if not model_zoo.is_registered(name):
        return None
    build = model_zoo.get_spec(name).build
    while isinstance(build, functools.partial):
        build = build.func
    module = getattr(build, "__module__", None) or ""
    return None if not module or module.split(".")[0] == "model_zoo" else module


@dataclass(frozen=True, kw_only=True)
class JobPayload:
    """One job and what its process needs to open it: where the backend's code is (`backend_ref`, as the
    sending process registers it), the artifact cache, the checkpoint, the int8 calibration, and for a timed
    step the protocol. `parity` checks the first outputs against PyTorch fp32; `passive_wait` opens the
    runtime without spinning threads (a resident side that waits its turn); `iterations` is a profile's."""

    job: Job
    backend_ref: str
    cache_dir: str
    protocol: ProtocolConfig | None = None
    weights: str | None = None
    calibration: CalibrationSpec | None = None
    parity: bool = False
    passive_wait: bool = False
    iterations: int | None = None
    model_module: str | None = None  # where the sender's registry got a model no plugin registers

    @classmethod
    def of_job(cls, job: Job, cache_dir: Path | str, *, protocol: ProtocolConfig | None = None,
               weights: str | None = None, calibration: CalibrationSpec | None = None, parity: bool = False,
               iterations: int | None = None) -> JobPayload:
        """The payload of `job` from this process: its backend as registered here; the calibration only for
        an int8 job (an fp32 job's artifact never depends on it)."""
        return cls(job=job, backend_ref=registry.ref(job.backend), cache_dir=str(cache_dir), protocol=protocol,
                   weights=weights, calibration=calibration if job.precision == "int8" else None, parity=parity,
                   iterations=iterations, model_module=model_module(job.model))

    def bring_model(self) -> None:
        """In the receiving process, after its plugins: register the job's model as the sender had it, where the
        sender registered it by importing a module (a library caller's own model) rather than as a plugin."""
        if self.model_module and not model_zoo.is_registered(self.job.model):
            importlib.import_module(self.model_module)

    def here(self, cache_dir: str | None = None, passive_wait: bool | None = None) -> JobPayload:
        """As this process opens it: its own registration of the backend (a node's, or a side whose plugin
        wraps it, may differ from the sender's), and a node's own artifact cache."""
        changes: dict[str, Any] = {}
        if self.job.backend in registry.names():
            changes["backend_ref"] = registry.ref(self.job.backend)
        if cache_dir is not None:
            changes["cache_dir"] = cache_dir
        if passive_wait is not None:
            changes["passive_wait"] = passive_wait
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for another interpreter."""
        return {"job": self.job.as_dict(), "backend_ref": self.backend_ref, "cache_dir": self.cache_dir,
                "protocol": self.protocol.as_dict() if self.protocol else None, "weights": self.weights,
                "calibration": self.calibration.as_dict() if self.calibration else None, "parity": self.parity,
                "passive_wait": self.passive_wait, "iterations": self.iterations, "model_module": self.model_module}

    @classmethod
    def of(cls, data: dict[str, Any]) -> JobPayload:
        """The payload `as_dict` wrote."""
        protocol = data.get("protocol")
        return cls(job=Job(**data["job"]), backend_ref=data["backend_ref"], cache_dir=data["cache_dir"],
                   protocol=ProtocolConfig.from_dict(protocol) if protocol else None, weights=data.get("weights"),
                   calibration=CalibrationSpec.of(data.get("calibration")), parity=bool(data.get("parity")),
                   passive_wait=bool(data.get("passive_wait")), iterations=data.get("iterations"),
                   model_module=data.get("model_module"))


@dataclass(frozen=True, kw_only=True)
class CountPayload:
    """A counted step (`harness.measure.counted.count_step`): one backend's measured jobs counted under valgrind
    in one process, in `python` with `env` where given (a lockstep side's interpreter and variables). `job`
    is the first of them, the one a launcher places the step by."""

    jobs: tuple[JobPayload, ...]
    ids: tuple[str, ...]
    timeout_s: float
    project_root: str
    python: str | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def job(self) -> Job:
        return self.jobs[0].job

    def here(self, cache_dir: str | None = None) -> CountPayload:
        """As a node counts them: its registration of the backend, its artifact cache."""
        return dataclasses.replace(self, jobs=tuple(p.here(cache_dir) for p in self.jobs))
