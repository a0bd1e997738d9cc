"""The contract between the harness and a runtime.

A backend checks whether its runtime is here, says which jobs it cannot run (and why), and opens a
`Session` for a model: export / convert / compile, input bound once. A session runs one inference
including whatever sync makes its output ready. It never times itself: the shared protocol does
(MLPerf LoadGen's split), except for a device timer the protocol may ask for.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from backends import int8_recipe
from backends.calibration import Calibration
from backends.config import BackendConfig
from backends.profiling import Profiled


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""  # why not, when not ok
    install: str = ""  # the exact command that fixes it, when pip can
    version: str = ""
    prepares: bool = False  # not ok, yet jobs still export/convert and check before their `skipped` record


class SkipJob(Exception):
    """Raised by `open` once a job is prepared as far as this machine allows (converted, checked) but
    cannot be timed here; the job's `skipped` record keeps the artifact and what the checks found."""

    def __init__(self, reason: str, artifact: dict | None = None, info: dict | None = None,
                 cold: dict[str, float] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.artifact, self.info, self.cold = reason, artifact or {}, info or {}, cold or {}


@dataclass(frozen=True)
class JobSpec:
    """The fields of a job a backend needs to decide and open (a view of `harness.measure.jobs.Job`)."""

    model: str
    backend: str
    device: str = "cpu"
    precision: str = "fp32"
    batch: int = 1
    threads: int = 1
    form: str = "fused"
    input_size: int = 224
    layout: str = "nchw"  # or "nhwc" (channels-last), where the backend supports it
    options: str = ""  # the backend's non-default configuration, canonical (`backends.config`)

    def config(self, backend: Backend) -> BackendConfig:
        """This job's typed configuration of `backend` (its `config` class, filled from `options`)."""
        return backend.config.parse(int8_recipe.split(self.options)[0], self.backend)

    def recipe(self) -> int8_recipe.Int8Recipe:
        """What is done to the network before its quantizer sees it (`-o int8.FIELD=VALUE`; defaults for
        a float job)."""
        return int8_recipe.of(self.options)


@dataclass
class OpenContext:
    """What the harness hands a backend when opening a session."""

    cache_dir: Path
    weights_hash: str  # identifies the model's weights, for artifact caches
    example: np.ndarray  # the timing input, already allocated (float32, NCHW)
    # Lockstep (`bench compare --interleave`): two sessions stay resident and take turns, so the one
    # that waits must not spin on a core. A backend that honours this sets its runtime's passive wait
    # policy and reports it as `info["wait_policy"]`.
    passive_wait: bool = False
    # The inputs an int8 quantizer calibrates on (`--calibration`); None for float jobs.
    calibration: Calibration | None = None


@dataclass
class Session:
    """A ready-to-time inference. `run` does one inference on the bound input, synchronously."""

    run: Callable[[], None]
    infer: Callable[[np.ndarray], np.ndarray]  # one inference on a given input (parity, accuracy)
    cold: dict[str, float] = field(default_factory=dict)  # export_s / convert_s / compile_s / load_s
    artifact: dict[str, str] = field(default_factory=dict)  # path and sha256 of the file that runs
    info: dict[str, object] = field(default_factory=dict)  # settings the runtime reports it used
    boundary: str = "host-sync"  # what `run` spans
    close: Callable[[], None] = lambda: None
    # One inference timed on the device (CUDA events), in ns: the `device` boundary, where there is one.
    device_timer: Callable[[], int] | None = None
    memory: Callable[[], dict[str, float]] = dict  # peak device memory after timing, where known
    # `profile(n)`: n inferences of this artifact under the runtime's own profiler (`backends.profiling`),
    # never while latency is timed; None where the backend has no profiler.
    profile: Callable[[int], Profiled] | None = None
    # int8: per layer, the int8 graph's output against fp32's on the given inputs (`bench accuracy --layers`);
    # a backend that can read intermediate outputs sets it and names how in its class's `layer_errors_by`
    layer_errors: Callable[[list[np.ndarray]], list[dict]] | None = None


class Backend:
    """A runtime: every backend subclasses this and overrides what it has. The class attributes below are its
    declared capabilities, with the defaults a plain runtime has, so the harness asks for them and never guesses:

    - `packages`: the distributions, beyond torch, whose versions a run records and a resume compares;
    - `preload`: modules the sweep's fork server imports once, so each measurement process does not;
    - `layouts`: the input layouts it runs (nchw only by default);
    - `own_devices`: True when its devices are its own (Core ML's compute units), so the sweep's --device does
      not apply and the first one is the default;
    - `profiler`: what its sessions' `profile` uses, for `bench profile` ("" where it has none);
    - `layer_errors_by`: how its sessions read int8 layer errors (`bench accuracy --layers`; "" where they do not);
    - `default_precision`; `config` (its typed `-o` options);
    - `peak_probe`: True when its own GEMM belongs in the machine's GFLOP/s ceiling (`harness.measure.peak`);
    - `build_env(cores)`: environment that sizes its compiler pool when `bench prepare` runs builds side by side;
    - `prepare(...)`: convert and check a model for a device bundle (`backends.coreml`); None where it cannot;
    - `device_slot`: the lab's slot its jobs take when its devices are its own (Core ML: "coreml", a Mac's compute
      units; offered by a node where the backend can time); "": the job's device (cpu, cuda);
    - `on_device`: True when it times jobs on an attached phone (`--device iphone`, `bench export` bundles);
    - `ranks_layers`: True when its layer diagnosis (`layer_errors`) ranks the candidate layers of every runtime's
      `bench int8 --budget` search (ONNX Runtime's: graph nodes named by the modules they came from);
    - `int8_search`: "module:function" of its own accuracy-budget search, `function(onnx, shape, config,
      calibration, validation, budget_pt) -> (node names kept float, detail)` (OpenVINO: NNCF's accuracy
      control, `backends.openvino_accuracy:reverted_layers`); "": the harness's bisection. A reference, imported
      when searched (`int8_searcher`), because such a module imports its backend's.
    """

    name: str = ""
    description: str = ""
    devices: tuple[str, ...] = ("cpu",)
    precisions: tuple[str, ...] = ("fp32",)
    packages: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ("nchw",)
    own_devices: bool = False
    profiler: str = ""
    layer_errors_by: str = ""
    default_precision: str = "fp32"
    peak_probe: bool = False
    config: type[BackendConfig] = BackendConfig
    prepare: Callable | None = None
    device_slot: str = ""
    on_device: bool = False
    ranks_layers: bool = False
    int8_search: str = ""

    def build_env(self, cores: int) -> dict[str, str]:
        """Environment for its builds when `cores` cores are theirs (none by default)."""
        return {}

    def int8_searcher(self) -> Callable | None:
        """Its own int8 accuracy-budget search (`int8_search`, imported now), or None."""
        module, _, function = self.int8_search.partition(":")
        return getattr(importlib.import_module(module), function) if module else None

    def availability(self) -> Availability:
        raise NotImplementedError

    def unsupported(self, job: JobSpec) -> str | None:
        """Why this backend cannot run `job` here (a `skipped` record), or None."""
        return common_unsupported(self, job)

    def open(self, model: nn.Module, job: JobSpec, ctx: OpenContext) -> Session:
        raise NotImplementedError


def module_availability(module: str, install: str, dist: str | None = None) -> Availability:
    """Available when `module` can be imported (found without importing it)."""
    if importlib.util.find_spec(module) is None:
        return Availability(False, f"the Python package {dist or module!r} is not installed", install)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return Availability(True, version=version(dist or module))
    except PackageNotFoundError:
        return Availability(True)


NO_INT8 = "has no int8 (quantized) path"


def common_unsupported(backend: Backend, job: JobSpec) -> str | None:
    """Device and precision checks every backend shares."""
    if job.device not in backend.devices:
        return f"{backend.name} runs on {', '.join(backend.devices)}, not {job.device}"
    if job.precision not in backend.precisions:
        if job.precision == "int8":
            return f"{backend.name} {NO_INT8}"  # `registry.unsupported` adds where int8 runs
        return f"{backend.name} does not run {job.precision} here (it runs {', '.join(backend.precisions)})"
    if job.layout not in backend.layouts:
        return f"{backend.name} runs the {', '.join(backend.layouts)} layout, not {job.layout}"
    return None

